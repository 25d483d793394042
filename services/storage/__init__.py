"""Adapters of the event log's database: the recorder that writes events (and idempotency receipts) in
one round trip, the read-model store, the log's protection, schema lock and migration, and transcodings."""
