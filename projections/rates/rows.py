"""The exchange-rate table and its typed row: one row per pair (currency, quote) and date, its latest figure.

`rates_table(name)` makes the same table under another name, for a read model that needs rates while it
handles events (segments convert each purchase at its date) and so keeps its own copy, in step with
its own position in the log.
"""

from __future__ import annotations

from typing import TypedDict

from projections.tables import Table


class RateRow(TypedDict):
    currency: str
    quote: str
    valid_at: int  # 00:00 UTC of the date it is quoted for (µs): in force from then until the pair's next date
    rate: str  # a Decimal's text: exact, as recorded
    source: str


def rates_table(name: str) -> Table:
    return Table(
        name,
        (("currency", "TEXT"), ("quote", "TEXT"), ("valid_at", "BIGINT"), ("rate", "TEXT"), ("source", "TEXT")),
        ("currency", "quote", "valid_at"),
        indexes=(("quote", "valid_at"),), row_type=RateRow)


RATES = rates_table("rates_quotes")
TABLES = (RATES,)
