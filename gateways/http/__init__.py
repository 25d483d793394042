"""The CRM's HTTP API (FastAPI): commands on the event log and queries on aggregates and read models."""
