"""The exchange-rate read model's write side: a quoted or corrected rate becomes its pair's row for its date."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.exchange_rates import ExchangeRate
from projections.rates.rows import RATES, TABLES, RateRow
from projections.read_model import ReadModel, Rows
from projections.tables import micros

RATE_EVENTS = (ExchangeRate.Quoted, ExchangeRate.Corrected)


class RatesReadModel(ReadModel):
    name = "rates"
    tables = TABLES

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return dict.fromkeys(RATE_EVENTS, _rate)


def _rate(event: Any, rows: Rows) -> None:
    """Put the event's figure as its pair's row for its date (a correction replaces the earlier one)."""
    rows.put(RATES, RateRow(currency=event.currency, quote=event.quote, valid_at=micros(event.occurred_at),
                            rate=str(event.rate), source=event.source))
