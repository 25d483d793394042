"""Benchmarks on the real PostgreSQL and Kafka: `python -m tests.benchmarks [--scale 1.0] [--only NAME…] [--smoke]`."""
