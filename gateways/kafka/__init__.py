"""Kafka: the relay that publishes the log to downstream services, and the inbound consumer."""
