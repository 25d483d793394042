"""The exchange-rate read model's query side: the rates in force at an instant, and every rate recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.exchange_rates import Conversion, RateInForce
from projections.ports import Store
from projections.rates.rows import RATES
from projections.tables import from_micros, micros


# Per currency quoted in the asked quote, its row of the latest date at or before T.
_IN_FORCE = ("SELECT r.currency, r.rate, r.valid_at FROM rates_quotes r JOIN (SELECT currency, MAX(valid_at) AS at "
             "FROM rates_quotes WHERE quote = ? AND valid_at <= ? GROUP BY currency) latest "
             "ON latest.currency = r.currency AND latest.at = r.valid_at WHERE r.quote = ?")


@dataclass(frozen=True)
class RateListing:
    currency: str
    quote: str
    valid_from: date
    rate: Decimal
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "quote": self.quote, "valid_from": self.valid_from.isoformat(),
                "rate": str(self.rate), "source": self.source}


class RateQueries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def in_force(self, quote: str, as_of: datetime) -> dict[str, RateInForce]:
        """Currency → the rate into `quote` in force at `as_of` (the latest date at or before it)."""
        t = micros(as_of)
        return {currency: RateInForce(Decimal(rate), from_micros(at).date())
                for currency, rate, at in self.store.query(_IN_FORCE, [quote, t, quote])}

    def conversion(self, reporting: str, as_of: datetime) -> Conversion:
        """What a report as of `as_of` converts into `reporting` with: the rates in force then."""
        return Conversion(reporting, self.in_force(reporting, as_of))

    def listing(self, quote: str | None = None, currency: str | None = None, limit: int = 1000) -> list[RateListing]:
        """Recorded rates, newest date first, optionally of one quote and/or one currency."""
        where, params = [], []
        for column, value in (("quote", quote), ("currency", currency)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = (f"SELECT currency, quote, valid_at, rate, source FROM {RATES.name}"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY valid_at DESC, currency, quote LIMIT ?")
        return [RateListing(c, q, from_micros(at).date(), Decimal(r), s)
                for c, q, at, r, s in self.store.query(sql, [*params, limit])]
