"""Adapters to the outside world: CLI, HTTP, Kafka, web dashboard."""
