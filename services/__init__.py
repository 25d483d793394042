"""Application services: command handling on the event log, queries, demo data."""
