"""The exchange-rate read model's write side: a quoted or corrected rate becomes its pair's row for its date."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.exchange_rates import ExchangeRate
from projections.rates.rows import RATES, TABLES, RateRow
from projections.read_model import ReadModel, Rows
from projections.tables import Table, micros

RATE_EVENTS = (ExchangeRate.Quoted, ExchangeRate.Corrected)


def keep_rate(table: Table, event: Any, rows: Rows) -> RateRow:
    """Put the event's figure as its pair's row for its date (a correction replaces the earlier one)."""
    row = RateRow(currency=event.currency, quote=event.quote, valid_at=micros(event.occurred_at),
                  rate=str(event.rate), source=event.source)
    rows.put(table, row)
    return row


class RatesReadModel(ReadModel):
    name = "rates"
    tables = TABLES

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return dict.fromkeys(RATE_EVENTS, _rate)


def _rate(event: Any, rows: Rows) -> None:
    keep_rate(RATES, event, rows)
