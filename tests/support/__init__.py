"""Helpers shared by tests: servers and databases, random histories, the README's reader, crash helpers."""
