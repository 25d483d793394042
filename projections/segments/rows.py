"""The rows of the customer segments read model, one named type per table, fields in the table's column order.

Each table is declared with its type (`Table.row_type`, which refuses one whose fields are not the
columns in order), so `Rows` fetches, holds and writes these very tuples, with no conversion to or from
dicts; handlers change a row by `put`ting its `_replace`. Instants stay µs since the epoch and money
cents, as stored (`projections.tables`); `instant` turns a nullable stored instant back into a datetime
for both sides of the read model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from projections.tables import from_micros


class CustomerRow(NamedTuple):
    """A customer as the segments know it: from its registration or, before that is seen, its first deal."""

    customer_id: str
    registered_at: int | None
    forgotten_at: int | None
    channel: str | None  # the acquisition channel
    span_count: int  # its spans are seq 0..span_count-1
    interval_count: int  # its live intervals are seq 0..interval_count-1
    region: str | None  # from its registration (None before it is seen)
    industry: str | None


class DealRow(NamedTuple):
    """A deal and its current span, if it is open or won (None: lost)."""

    deal_id: str
    customer_id: str
    pipeline: str
    currency: str
    amount_cents: int
    span_seq: int | None


class SpanRow(NamedTuple):
    """A deal `open`, or `won` (a purchase of `amount_cents`), during `[start_at, end_at)`; end_at None: still."""

    customer_id: str
    seq: int
    deal_id: str
    kind: str
    pipeline: str
    start_at: int
    end_at: int | None
    amount_cents: int
    currency: str


class TouchRow(NamedTuple):
    customer_id: str
    seq: int
    channel: str
    touched_at: int


class IntervalRow(NamedTuple):
    """The customer's segment during `[valid_from, valid_to)`, valid_to None: for ever.

    A superseded row (`superseded`) has the empty range `[0, 0)` and None in every field after it.
    """

    customer_id: str
    seq: int
    valid_from: int
    valid_to: int | None
    tier: str
    tier_since: int
    recency: int
    frequency: int
    monetary: int
    monetary_cents: int  # CNY won in the 365 days up to the interval
    open_deals: int
    last_purchase_at: int | None
    preferred_pipeline: str | None
    unconverted: str | None  # JSON {currency: cents} won in the window when no rate into CNY was known; None: none


class RateSeriesRow(TypedDict):
    """A currency's rates into CNY (RFM's M is in CNY), `{valid_at µs as text: rate as text}`: one row a
    currency, looked up by key when a purchase is converted at its instant."""

    currency: str
    series: Any  # dict once held (`tables.held_json`), JSON text as read


def superseded(customer_id: str, seq: int) -> IntervalRow:
    """The row left where a longer earlier timeline had an interval: the empty range `[0, 0)`, no instant's."""
    return IntervalRow(customer_id, seq, 0, 0, *(None,) * (len(IntervalRow._fields) - 4))  # type: ignore[arg-type]


def instant(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)
