"""How a check of `crm import` says no: the field and the reason. The engine (`engine.HistoryRules`), which
knows which line it is reading, adds the line's number, event type and aggregate."""

from __future__ import annotations


class Refusal(ValueError):
    """One event breaks a rule: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")
        self.field = field
