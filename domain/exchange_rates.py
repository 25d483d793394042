"""Exchange rates as dated facts, and the conversion of per-currency sums into a reporting currency.

A rate says: from 00:00 UTC of `valid_from`, one unit of `currency` is worth `rate` units of `quote` (the
reporting currency it was quoted in), until a later date of the same pair. It is history like any other
event: its business time (`occurred_at`) *is* that instant, so that "as of T" — in a query, in a replay of
the log to T — sees exactly the rates with `valid_from` ≤ T, and a rate imported today for 2024-03-01 serves
every report of March 2024.

One aggregate per pair and date (its id derived from them, like a pipeline's from its key): importing the
same file twice changes nothing, and a date's rate can be corrected (`Corrected`, same business time)
without the per-aggregate clock refusing a date older than the last one imported.

Conversion sums each currency first and converts each sum once, at one rate: a report has at most one
rounding (half-even, to the cent) per currency, and every path that finds the same per-currency sums
(SQL, tallies, replay) finds the same converted total. An amount whose currency has no rate at the instant
is never added: it is reported apart, by currency (`Converted.unconverted`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from uuid import NAMESPACE_URL, UUID, uuid5

from domain import money
from domain.base import CrmAggregate, Meta, require_business_date, require_text
from domain.errors import DomainError

DEFAULT_REPORTING_CURRENCY = "CNY"
# 1e-9 … 1e9 covers every real pair (1 IRR ≈ 0.00017 CNY; 1 KWD ≈ 1.4 million IRR is the widest, ≈ 1.4e6);
# twelve decimal places keep an inverted ECB rate (1 / 1.0812) to ten significant digits, beyond any source.
SMALLEST_RATE, LARGEST_RATE = Decimal("1e-9"), Decimal("1e9")
RATE_PLACES = 12
MAX_SOURCE = 200


def rate_id(currency: str, quote: str, valid_from: date) -> UUID:
    """The id of a pair's rate on a date: derived, so that recording it again finds the same aggregate."""
    return uuid5(NAMESPACE_URL, f"crm:exchange-rate:{currency}:{quote}:{valid_from.isoformat()}")


def valid_from_instant(valid_from: date) -> datetime:
    """The business time of a rate: 00:00 UTC of the day it takes effect."""
    return datetime.combine(valid_from, time(0), tzinfo=timezone.utc)


def require_rate(value: Decimal | int | str, what: str = "rate") -> Decimal:
    """A rate: a positive decimal (never a float), within SMALLEST_RATE … LARGEST_RATE, ≤ 12 decimal places."""
    if isinstance(value, (float, bool)):
        raise DomainError(f"{what} must be a decimal string or integer, not {type(value).__name__}")
    try:
        parsed = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(f"{what} {value!r} is not a number") from None
    if not parsed.is_finite() or parsed <= 0:
        raise DomainError(f"{what} must be a positive number (got {value})")
    if not SMALLEST_RATE <= parsed <= LARGEST_RATE:
        raise DomainError(f"{what} must be between {SMALLEST_RATE} and {LARGEST_RATE:,.0f} (got {parsed})")
    if parsed != parsed.quantize(Decimal(1).scaleb(-RATE_PLACES)):
        raise DomainError(f"{what} may have at most {RATE_PLACES} decimal places (got {parsed})")
    return parsed


def require_pair(currency: str, quote: str) -> tuple[str, str]:
    """Two different ISO 4217 currencies (`money.currency` checks each)."""
    money.currency(currency)
    money.currency(quote)
    if currency == quote:
        raise DomainError(f"a rate converts one currency into another, not {currency} into itself")
    return currency, quote


def require_source(source: str) -> str:
    source = require_text(source, "rate source")
    if len(source) > MAX_SOURCE:
        raise DomainError(f"rate source must be at most {MAX_SOURCE} characters")
    return source


class _RateEvent(CrmAggregate.Event):
    """What both events of a rate say (each whole by itself: a read model needs no earlier event)."""

    currency: str
    quote: str
    rate: Decimal
    valid_from: date
    source: str

    def apply(self, rate: ExchangeRate) -> None:
        rate.currency, rate.quote, rate.valid_from = self.currency, self.quote, self.valid_from
        rate.rate, rate.source = self.rate, self.source


class ExchangeRate(CrmAggregate):
    """One pair's rate on one date; its events' business time is the date's 00:00 UTC."""

    class Quoted(_RateEvent, CrmAggregate.Created):
        """The pair's rate for the date, first recorded."""

    class Corrected(_RateEvent):
        """A better figure for the same pair and date: it replaces the earlier one wherever rates are used."""

    @classmethod
    def quote_rate(cls, currency: str, quote: str, rate: Decimal | int | str, valid_from: date, source: str,
                   meta: Meta) -> ExchangeRate:
        require_pair(currency, quote)
        require_business_date(valid_from, "valid_from")
        return cls._open(cls.Quoted, _at_valid_from(meta, valid_from), id=rate_id(currency, quote, valid_from),
                         currency=currency, quote=quote, rate=require_rate(rate), valid_from=valid_from,
                         source=require_source(source))

    def correct(self, rate: Decimal | int | str, source: str, meta: Meta) -> None:
        """Replace the rate; refused when it is the same figure (nothing to correct)."""
        parsed = require_rate(rate)
        if parsed == self.rate:
            raise DomainError(f"{self.currency}/{self.quote} on {self.valid_from.isoformat()} is already {parsed}")
        self._record(self.Corrected, _at_valid_from(meta, self.valid_from), currency=self.currency,
                     quote=self.quote, rate=parsed, valid_from=self.valid_from, source=require_source(source))


def _at_valid_from(meta: Meta, valid_from: date) -> Meta:
    return dataclasses.replace(meta, occurred_at=valid_from_instant(valid_from), clocked=False)


# --- conversion -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateInForce:
    """The rate a report used for one currency, and the date it was quoted for (an old one shows)."""

    rate: Decimal
    valid_from: date


@dataclass(frozen=True)
class Converted:
    """Per-currency sums in the reporting currency: `cents` the converted total of what had a rate,
    `unconverted` the sums (in their own currency's cents) of what had none."""

    currency: str
    cents: int
    unconverted: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.unconverted


@dataclass(frozen=True)
class Conversion:
    """The rates a report converts with: into `reporting`, those in force at its instant (currency → rate).
    The default converts nothing but the reporting currency itself (CNY): every other amount is unconverted."""

    reporting: str = DEFAULT_REPORTING_CURRENCY
    rates: Mapping[str, RateInForce] = field(default_factory=dict)

    def cents(self, cents: int, currency: str) -> int | None:
        """`cents` of `currency` in the reporting currency; None: no rate for it."""
        if currency == self.reporting:
            return cents
        rate = self.rates.get(currency)
        return None if rate is None else convert_cents(cents, rate.rate)

    def convert(self, sums: Mapping[str, int]) -> Converted:
        return convert(sums, self.rates, self.reporting)

    def to_dict(self) -> dict[str, object]:
        """The currency and the rates used (each with its date: a stale one shows)."""
        return {"currency": self.reporting, "rates": {c: {"rate": str(r.rate), "valid_from": r.valid_from.isoformat()}
                                                      for c, r in sorted(self.rates.items())}}


def convert_cents(cents: int, rate: Decimal) -> int:
    """An amount in cents at `rate`, to the cent, half-even (the rounding of accounting)."""
    return int((Decimal(cents) * rate).to_integral_value(rounding=ROUND_HALF_EVEN))


def convert(sums: Mapping[str, int], rates: Mapping[str, RateInForce], reporting: str) -> Converted:
    """Sum per-currency amounts (cents) into `reporting`: its own at 1, others at their rate, the rest apart."""
    total, unconverted = 0, {}
    for currency, cents in sorted(sums.items()):
        if not cents:
            continue
        if currency == reporting:
            total += cents
        elif currency in rates:
            total += convert_cents(cents, rates[currency].rate)
        else:
            unconverted[currency] = cents
    return Converted(reporting, total, unconverted)


def add_sums(total: dict[str, int], more: Mapping[str, int], sign: int = 1) -> dict[str, int]:
    """Add per-currency sums into `total` (dropping currencies that come to zero); returns `total`."""
    for currency, cents in more.items():
        value = total.get(currency, 0) + sign * cents
        if value:
            total[currency] = value
        else:
            total.pop(currency, None)
    return total
