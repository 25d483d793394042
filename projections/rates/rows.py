"""The exchange-rate table and its typed row: one row per pair (currency, quote) and date, its latest figure."""

from __future__ import annotations

from typing import TypedDict

from projections.tables import Table


class RateRow(TypedDict):
    currency: str
    quote: str
    valid_at: int  # 00:00 UTC of the date it is quoted for (µs): in force from then until the pair's next date
    rate: str  # a Decimal's text: exact, as recorded
    source: str


RATES = Table(
    "rates_quotes",
    (("currency", "TEXT"), ("quote", "TEXT"), ("valid_at", "BIGINT"), ("rate", "TEXT"), ("source", "TEXT")),
    ("currency", "quote", "valid_at"),
    indexes=(("quote", "valid_at"),), row_type=RateRow)
TABLES = (RATES,)
