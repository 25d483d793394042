"""Crypto-shredding: the per-record key store and the mapper that seals personal fields into the log."""
