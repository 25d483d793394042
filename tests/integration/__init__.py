"""Integration tests against a real PostgreSQL and Kafka (see conftest.py and deploy/README.md).

This file makes the folder a package so that pytest does not put it on sys.path, where the
helper module services.py would shadow the application's own `services` package.
"""
