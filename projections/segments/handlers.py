"""The write side of the customer segments read model: its tables, and the handlers turning customer and
deal events into typed rows (`projections.segments.rows`) and each changed customer's segment timeline.

Rules are in `domain.segmentation`. Each customer's deals become spans under the customer: `open`
while a deal is open, `won` (a purchase, with its amount) from its win until it is reopened. Once per
projector batch, each customer whose deals or registration the batch changed gets its whole segment
timeline recomputed from ALL its spans known so far — so the result does not depend on the order deals
of one customer arrive in — as intervals `[valid_from, valid_to)`, numbered 0..n-1 under the customer.
Intervals ending before the earliest instant the batch changed cannot change (the segment at an
instant depends only on facts up to it); for a customer with many intervals the sweep resumes after
the last of them, and only the intervals from there on are compared with the stored ones, only those
that differ being written. Rows left over from a longer earlier timeline are superseded:
rewritten as the empty range [0, 0), which no instant is in. (Recomputing on every event made a
customer's rebuild cubic in its deals: 500 deals took 199 s; see the notes of issue 10.)
The timeline runs from the customer's first known instant (registration or first deal) until it is
forgotten; ages growing with time are boundaries of the timeline, so "segment as of T" is one
indexed range query (`projections.segments.queries`). Touches are kept for the preferred channel as of T.

A purchase in another currency than CNY counts in M at the rate into CNY in force when it was made
(`domain.segmentation`): this read model keeps each currency's rates into CNY (`segments_rates`, one
series a currency), and a rate recorded for a date (even after the purchases it converts, as imports do)
recomputes, from that date on, the timelines of the customers with purchases in that currency since then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import orjson

from domain.customer import Customer
from domain.deal import Deal
from domain.exchange_rates import convert_cents
from domain.segmentation import MONETARY_CURRENCY, OpenDeal, Purchase, Segment, SegmentInterval, segment_timeline
from projections.rates import RATE_EVENTS
from projections.read_model import ReadModel, Rows
from projections.segments.rows import (CustomerRow, DealRow, IntervalRow, RateSeriesRow, SpanRow, TouchRow, instant,
                                       superseded)
from projections.segments.tier_tallies import TALLIES, tally_rewrite
from projections.tables import Table, cents, from_micros, held_json, micros
from projections.versioned_properties import property_tables, record_changes

OPEN, WON = "open", "won"  # the kinds of span
# A customer with at least this many stored intervals has its timeline worked out from the last one the
# batch cannot have changed (found in ≈ log2(n) reads, one query each); fewer: from its start, which
# needs no read of its intervals beyond those compared.
RESUME_FROM = 256

CUSTOMERS = Table(
    "segments_customers",
    (("customer_id", "TEXT"), ("registered_at", "BIGINT"), ("forgotten_at", "BIGINT"), ("channel", "TEXT"),
     ("span_count", "INTEGER"), ("interval_count", "INTEGER"), ("region", "TEXT"), ("industry", "TEXT")),
    ("customer_id",), row_type=CustomerRow,
)
DEALS = Table(
    "segments_deals",
    (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("pipeline", "TEXT"), ("currency", "TEXT"),
     ("amount_cents", "BIGINT"), ("span_seq", "INTEGER")),
    ("deal_id",), row_type=DealRow,
)
SPANS = Table(
    "segments_deal_spans",
    (("customer_id", "TEXT"), ("seq", "INTEGER"), ("deal_id", "TEXT"), ("kind", "TEXT"), ("pipeline", "TEXT"),
     ("start_at", "BIGINT"), ("end_at", "BIGINT"), ("amount_cents", "BIGINT"), ("currency", "TEXT")),
    ("customer_id", "seq"), row_type=SpanRow,
)
TOUCHES = Table(
    "segments_touches",
    (("customer_id", "TEXT"), ("seq", "INTEGER"), ("channel", "TEXT"), ("touched_at", "BIGINT")),
    ("customer_id", "seq"),
    indexes=(("touched_at",),), row_type=TouchRow,
)
INTERVALS = Table(
    "segments_intervals",
    (("customer_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"),
     ("tier", "TEXT"), ("tier_since", "BIGINT"), ("recency", "INTEGER"), ("frequency", "INTEGER"),
     ("monetary", "INTEGER"), ("monetary_cents", "BIGINT"), ("open_deals", "INTEGER"),
     ("last_purchase_at", "BIGINT"), ("preferred_pipeline", "TEXT"), ("unconverted", "TEXT")),
    ("customer_id", "seq"),
    indexes=(("tier", "valid_from"), ("valid_from",), ("valid_to",)), row_type=IntervalRow,
    ignored_rows="valid_from = 0 AND valid_to = 0 AND tier IS NULL",  # `rows.superseded`
)
PROPERTIES = property_tables("segments")  # customers' properties as of any instant, for `--by`/filters
RATES = Table("segments_rates", (("currency", "TEXT"), ("series", "TEXT")), ("currency",), json_columns=("series",),
              row_type=RateSeriesRow)
_RATES_CHANGED, _RATE_INDEX = "segments:rates", "segments:rate_index"  # this batch's, in `Rows.pending`
CUSTOMER_EVENTS = (Customer.Registered, Customer.Forgotten)
DEAL_EVENTS = (Deal.Opened, Deal.AmountChanged, Deal.Won, Deal.Lost, Deal.Reopened)


class SegmentsReadModel(ReadModel):
    """Customers' RFM scores and value tiers as intervals of business time."""

    name = "segments"
    tables = (CUSTOMERS, DEALS, SPANS, TOUCHES, INTERVALS, RATES, *PROPERTIES, TALLIES)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        changing = {
            Customer.Registered: _registered,
            Customer.Forgotten: _forgotten,
            Deal.Opened: _opened,
            Deal.Won: _won,
            Deal.Lost: _lost,
            Deal.Reopened: _reopened,
        }
        return {Customer.TouchLogged: _touched, Customer.PropertiesChanged: _properties_changed, Deal.AmountChanged: _amount_changed,
                **dict.fromkeys(RATE_EVENTS, _rate),
                **{cls: _noting(handler) for cls, handler in changing.items()}}

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """Fetch the deals, their customers and all those customers' spans in a few queries."""
        deal_ids = {str(e.originator_id) for e in events if isinstance(e, DEAL_EVENTS)}
        rows.prefetch(DEALS, [(d,) for d in deal_ids])
        customer_ids = {str(e.originator_id) for e in events if isinstance(e, CUSTOMER_EVENTS)}
        customer_ids |= {str(e.customer_id) for e in events if isinstance(e, Deal.Opened)}
        customer_ids |= {deal.customer_id for d in deal_ids if (deal := rows.get(DEALS, d))}
        rows.prefetch(CUSTOMERS, [(c,) for c in customer_ids])
        rows.prefetch(SPANS, [(c, seq) for c in customer_ids if (customer := rows.get(CUSTOMERS, c))
                              for seq in range(customer.span_count)])

    def finish(self, rows: Rows) -> None:
        """Recompute the timeline of each customer the batch changed, once (not once per event: a
        customer with n deals costs O(n) per recompute), and write the intervals that changed."""
        changed: dict[str, int] = rows.pending.pop(self.name, {})
        _note_purchases_of_new_rates(changed, rows)
        tails = {c: _tail(_customer(c, rows), since, rows) for c, since in changed.items()}
        kept = {c: offset + _unchanged_prefix(tail, changed[c]) for c, (offset, tail) in tails.items()}
        rows.prefetch(INTERVALS, [(c, seq) for c, k in kept.items()
                                  for seq in range(k, _customer(c, rows).interval_count)])
        for customer_id, (offset, tail) in tails.items():
            _write_timeline(_customer(customer_id, rows), offset, tail, kept[customer_id], rows)


def _noting(handler: Callable[[Any, Rows], tuple[str, int]]) -> Callable[[Any, Rows], None]:
    """The handler, noting for `finish` the customer whose timeline it changed and from when (µs)."""
    def handle(event: Any, rows: Rows) -> None:
        customer_id, since = handler(event, rows)
        changed = rows.pending.setdefault(SegmentsReadModel.name, {})
        changed[customer_id] = min(since, changed.get(customer_id, since))
    return handle


def _rate(event: Any, rows: Rows) -> None:
    """Keep a rate into CNY in its currency's series; `finish` recomputes the customers it may change."""
    if event.quote != MONETARY_CURRENCY:
        return
    row = cast("RateSeriesRow | None", rows.get(RATES, event.currency))
    if row is None:
        row = RateSeriesRow(currency=event.currency, series={})
    at = micros(event.occurred_at)
    held_json(row, "series")[str(at)] = str(event.rate)
    rows.put(RATES, row)
    rows.pending.setdefault(_RATE_INDEX, {}).pop(event.currency, None)
    changed = rows.pending.setdefault(_RATES_CHANGED, {})
    changed[event.currency] = min(at, changed.get(event.currency, at))


def _note_purchases_of_new_rates(changed: dict[str, int], rows: Rows) -> None:
    """Customers with purchases in a currency from the date of a rate this batch recorded: their timelines
    change from then on (a purchase converts at the rate in force when it was made)."""
    for currency, since in rows.pending.pop(_RATES_CHANGED, {}).items():
        for (customer_id,) in rows.select(f"SELECT DISTINCT customer_id FROM {SPANS.name} WHERE kind = ? AND "
                                          "currency = ? AND start_at >= ?", [WON, currency, since]):
            changed[customer_id] = min(since, changed.get(customer_id, since))


def _converted(span: SpanRow, rows: Rows) -> Decimal | None:
    """A purchase's amount in CNY at the rate in force when it was made; None: no rate then."""
    index = rows.pending.setdefault(_RATE_INDEX, {})
    if span.currency not in index:
        row = cast("RateSeriesRow | None", rows.get(RATES, span.currency))
        series = {} if row is None else held_json(row, "series")
        index[span.currency] = sorted((int(at), Decimal(rate)) for at, rate in series.items())
    dated = index[span.currency]
    found = bisect_right(dated, (span.start_at, Decimal("Infinity"))) - 1
    if found < 0:
        return None
    return Decimal(convert_cents(span.amount_cents, dated[found][1])).scaleb(-2)


def _customer(customer_id: str, rows: Rows) -> CustomerRow:
    """The customer's row; a new one if its deals are seen before its registration."""
    customer: CustomerRow | None = rows.get(CUSTOMERS, customer_id)
    if customer is None:
        customer = CustomerRow(customer_id, registered_at=None, forgotten_at=None, channel=None, span_count=0,
                               interval_count=0, region=None, industry=None)
        rows.put(CUSTOMERS, customer)
    return customer


def _registered(event: Customer.Registered, rows: Rows) -> tuple[str, int]:
    at = micros(event.occurred_at)
    customer = _customer(str(event.originator_id), rows)._replace(registered_at=at, channel=event.channel,
                                                                  region=event.region, industry=event.industry)
    rows.put(CUSTOMERS, customer)
    return customer.customer_id, at


def _forgotten(event: Customer.Forgotten, rows: Rows) -> tuple[str, int]:
    at = micros(event.occurred_at)
    customer = _customer(str(event.originator_id), rows)._replace(forgotten_at=at)
    rows.put(CUSTOMERS, customer)
    return customer.customer_id, at


def _properties_changed(event: Customer.PropertiesChanged, rows: Rows) -> None:
    """Properties do not change tiers: only their versions are kept, to group and filter by."""
    record_changes(PROPERTIES, str(event.originator_id), event.changes, event.originator_version,
                   micros(event.occurred_at), rows)


def _touched(event: Customer.TouchLogged, rows: Rows) -> None:
    rows.put(TOUCHES, TouchRow(str(event.originator_id), event.originator_version, event.channel,
                               micros(event.occurred_at)))


def _opened(event: Deal.Opened, rows: Rows) -> tuple[str, int]:
    customer = _customer(str(event.customer_id), rows)
    deal = DealRow(str(event.originator_id), customer.customer_id, event.pipeline, event.currency,
                   cents(event.amount), span_seq=None)
    at = micros(event.occurred_at)
    _start_span(deal, customer, OPEN, at, rows)
    return customer.customer_id, at


def _amount_changed(event: Deal.AmountChanged, rows: Rows) -> None:
    rows.put(DEALS, _deal(event, rows)._replace(amount_cents=cents(event.new_amount)))


def _won(event: Deal.Won, rows: Rows) -> tuple[str, int]:
    return _change_span(event, WON, rows)


def _lost(event: Deal.Lost, rows: Rows) -> tuple[str, int]:
    return _change_span(event, None, rows)


def _reopened(event: Deal.Reopened, rows: Rows) -> tuple[str, int]:
    return _change_span(event, OPEN, rows)


def _deal(event: Any, rows: Rows) -> DealRow:
    deal: DealRow | None = rows.get(DEALS, str(event.originator_id))
    assert deal is not None, f"deal {event.originator_id} changed before it was opened"
    return deal


def _change_span(event: Any, kind: str | None, rows: Rows) -> tuple[str, int]:
    """End the deal's current span (open, or won) and start one of `kind` (None: none, it was lost)."""
    deal = _deal(event, rows)
    customer = _customer(deal.customer_id, rows)
    at = micros(event.occurred_at)
    if deal.span_seq is not None:
        rows.put(SPANS, _span(deal.customer_id, deal.span_seq, rows)._replace(end_at=at))
        deal = deal._replace(span_seq=None)
        rows.put(DEALS, deal)
    if kind is not None:
        _start_span(deal, customer, kind, at, rows)
    return customer.customer_id, at


def _span(customer_id: str, seq: int, rows: Rows) -> SpanRow:
    span: SpanRow | None = rows.get(SPANS, customer_id, seq)
    assert span is not None, f"span {seq} of customer {customer_id} is missing"
    return span


def _start_span(deal: DealRow, customer: CustomerRow, kind: str, at: int, rows: Rows) -> None:
    seq = customer.span_count
    rows.put(SPANS, SpanRow(customer.customer_id, seq, deal.deal_id, kind, deal.pipeline, at, None,
                            deal.amount_cents, deal.currency))
    rows.put(CUSTOMERS, customer._replace(span_count=seq + 1))
    rows.put(DEALS, deal._replace(span_seq=seq))


def _tail(customer: CustomerRow, since: int, rows: Rows) -> tuple[int, list[SegmentInterval]]:
    """The customer's timeline from the seq returned on: from the start, or for a customer with many
    intervals, from the last stored one that ends before `since` (the earliest instant the batch changed).

    Evaluating only from there spares a long unchanged past: a new deal of a customer with 4,000 deals
    made a sweep through all of its ≈ 11,600 intervals.
    """
    stored = customer.interval_count
    unchanged = _ending_before(customer.customer_id, stored, since, rows) if stored >= RESUME_FROM else 0
    if unchanged == 0:
        return 0, _timeline(customer, rows)
    after = _stored_interval(_interval(customer.customer_id, unchanged - 1, rows))
    return unchanged - 1, _timeline(customer, rows, after)


def _ending_before(customer_id: str, stored: int, since: int, rows: Rows) -> int:
    """How many of the customer's stored intervals end before `since`, by bisection (they are in time
    order: ≈ 14 reads for 11,600 intervals)."""
    low, high = 0, stored
    while low < high:
        middle = (low + high) // 2
        valid_to = _interval(customer_id, middle, rows).valid_to
        if valid_to is not None and valid_to < since:
            low = middle + 1
        else:
            high = middle
    return low


def _interval(customer_id: str, seq: int, rows: Rows) -> IntervalRow:
    interval: IntervalRow | None = rows.get(INTERVALS, customer_id, seq)
    assert interval is not None, f"interval {seq} of customer {customer_id} is missing"
    return interval


def _stored_interval(row: IntervalRow) -> SegmentInterval:
    """An interval as `_interval_row` stored it."""
    unconverted = orjson.loads(row.unconverted) if row.unconverted else {}
    segment = Segment(row.recency, row.frequency, row.monetary, Decimal(row.monetary_cents).scaleb(-2),
                      row.open_deals, instant(row.last_purchase_at), row.preferred_pipeline,
                      tuple((currency, Decimal(amount).scaleb(-2)) for currency, amount in unconverted.items()))
    return SegmentInterval(from_micros(row.valid_from), instant(row.valid_to), segment, from_micros(row.tier_since))


def _timeline(customer: CustomerRow, rows: Rows, after: SegmentInterval | None = None) -> list[SegmentInterval]:
    """The customer's segment timeline from all its spans known so far (from `after` on, if given)."""
    spans = [_span(customer.customer_id, seq, rows) for seq in range(customer.span_count)]
    purchases = [Purchase(from_micros(s.start_at), Decimal(s.amount_cents).scaleb(-2), s.currency, s.pipeline,
                          instant(s.end_at), None if s.currency == MONETARY_CURRENCY else _converted(s, rows))
                 for s in spans if s.kind == WON]
    open_deals = [OpenDeal(from_micros(s.start_at), instant(s.end_at)) for s in spans if s.kind == OPEN]
    starts = [customer.registered_at, *(s.start_at for s in spans)]
    start = from_micros(min(s for s in starts if s is not None))
    return segment_timeline(start, instant(customer.forgotten_at), purchases, open_deals, after)


def _unchanged_prefix(timeline: list[SegmentInterval], since: int) -> int:
    """How many leading intervals nothing from `since` on can have changed: those ending before it.

    The batch only added facts from `since` on (spans starting, spans ending, a registration or a
    forgetting then), and the segment at an instant depends only on facts up to it; an interval
    ending exactly at `since` may now run on, so it is not kept.
    """
    cut = from_micros(since)
    return next((n for n, interval in enumerate(timeline)
                 if interval.valid_to is None or interval.valid_to >= cut), len(timeline))


def _write_timeline(customer: CustomerRow, offset: int, tail: list[SegmentInterval], kept: int,
                    rows: Rows) -> None:
    """Write the intervals from `kept` on that differ from the stored ones (`tail` holds those from
    `offset` on); supersede rows no longer there."""
    customer_id, stored, count = customer.customer_id, customer.interval_count, offset + len(tail)
    for seq in range(kept, max(count, stored)):
        row = _interval_row(customer_id, seq, tail[seq - offset]) if seq < count else superseded(customer_id, seq)
        # rows past `stored` are not live (superseded, in no tier): no need to read them
        old = rows.get(INTERVALS, customer_id, seq) if seq < stored else None
        if old != row:
            rows.put(INTERVALS, row)
            tally_rewrite(old, row, rows)
    rows.put(CUSTOMERS, customer._replace(interval_count=count))


def _interval_row(customer_id: str, seq: int, interval: SegmentInterval) -> IntervalRow:
    segment = interval.segment
    return IntervalRow(
        customer_id=customer_id, seq=seq, valid_from=micros(interval.valid_from),
        valid_to=_micros(interval.valid_to), tier=segment.tier, tier_since=micros(interval.tier_since),
        recency=segment.recency, frequency=segment.frequency, monetary=segment.monetary,
        monetary_cents=cents(segment.monetary_amount), open_deals=segment.open_deals,
        last_purchase_at=_micros(segment.last_purchase_at), preferred_pipeline=segment.preferred_pipeline,
        unconverted=orjson.dumps({c: cents(a) for c, a in segment.unconverted}).decode() if segment.unconverted
        else None,
    )


def _micros(value: datetime | None) -> int | None:
    return None if value is None else micros(value)

