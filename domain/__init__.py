"""The CRM's domain model: aggregates, their events and rules. Pure Python, no infrastructure."""
