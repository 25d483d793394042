"""The customer segments read model: RFM scores, value tiers and tier membership, in business time.

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
indexed range query. Touches are kept for the preferred channel as of T.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.customer import Customer
from domain.deal import Deal
from domain.segmentation import TIERS, OpenDeal, Purchase, Segment, SegmentInterval, most_frequent, segment_timeline
from projections.base import ReadModel, Rows
from projections.tables import Table, cents, from_micros, micros
from projections.ports import Store

OPEN, WON = "open", "won"
CHUNK = 400
MOVEMENT_DAYS = 90  # the summary's movements look back this far
# A customer with at least this many stored intervals has its timeline worked out from the last one the
# batch cannot have changed (found in ≈ log2(n) reads, one query each); fewer: from its start, which
# needs no read of its intervals beyond those compared.
RESUME_FROM = 256

CUSTOMERS = Table(
    "segments_customers",
    (("customer_id", "TEXT"), ("registered_at", "BIGINT"), ("forgotten_at", "BIGINT"), ("channel", "TEXT"),
     ("span_count", "INTEGER"), ("interval_count", "INTEGER")),
    ("customer_id",),
)
DEALS = Table(
    "segments_deals",
    (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("pipeline", "TEXT"), ("currency", "TEXT"),
     ("amount_cents", "BIGINT"), ("span_seq", "INTEGER")),
    ("deal_id",),
)
SPANS = Table(
    "segments_deal_spans",
    (("customer_id", "TEXT"), ("seq", "INTEGER"), ("deal_id", "TEXT"), ("kind", "TEXT"), ("pipeline", "TEXT"),
     ("start_at", "BIGINT"), ("end_at", "BIGINT"), ("amount_cents", "BIGINT"), ("currency", "TEXT")),
    ("customer_id", "seq"),
)
TOUCHES = Table(
    "segments_touches",
    (("customer_id", "TEXT"), ("seq", "INTEGER"), ("channel", "TEXT"), ("touched_at", "BIGINT")),
    ("customer_id", "seq"),
    indexes=(("touched_at",),),
)
INTERVALS = Table(
    "segments_intervals",
    (("customer_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"),
     ("tier", "TEXT"), ("tier_since", "BIGINT"), ("recency", "INTEGER"), ("frequency", "INTEGER"),
     ("monetary", "INTEGER"), ("monetary_cents", "BIGINT"), ("open_deals", "INTEGER"),
     ("last_purchase_at", "BIGINT"), ("preferred_pipeline", "TEXT")),
    ("customer_id", "seq"),
    indexes=(("tier", "valid_from"), ("valid_from",)),
)
_COVERING = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"  # the interval holding an instant
CUSTOMER_EVENTS = (Customer.Registered, Customer.Forgotten)
DEAL_EVENTS = (Deal.Opened, Deal.AmountChanged, Deal.Won, Deal.Lost, Deal.Reopened)


def tier_members_sql(tier: str, as_of: datetime) -> tuple[str, list[Any]]:
    """SQL selecting the ids of the customers in `tier` at `as_of`, and its parameters.

    For other read models, e.g. `... WHERE d.customer_id IN (<sql>)` with the parameters spliced in.
    """
    t = micros(as_of)
    return f"SELECT customer_id FROM segments_intervals WHERE tier = ? AND {_COVERING}", [tier, t, t]


class SegmentsReadModel(ReadModel):
    """Customers' RFM scores and value tiers as intervals of business time."""

    name = "segments"
    tables = (CUSTOMERS, DEALS, SPANS, TOUCHES, INTERVALS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        changing = {
            Customer.Registered: _registered,
            Customer.Forgotten: _forgotten,
            Deal.Opened: _opened,
            Deal.Won: _won,
            Deal.Lost: _lost,
            Deal.Reopened: _reopened,
        }
        return {Customer.TouchLogged: _touched, Deal.AmountChanged: _amount_changed,
                **{cls: _noting(handler) for cls, handler in changing.items()}}

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """Fetch the deals, their customers and all those customers' spans in a few queries."""
        deal_ids = {str(e.originator_id) for e in events if isinstance(e, DEAL_EVENTS)}
        rows.prefetch(DEALS, [(d,) for d in deal_ids])
        customer_ids = {str(e.originator_id) for e in events if isinstance(e, CUSTOMER_EVENTS)}
        customer_ids |= {str(e.customer_id) for e in events if isinstance(e, Deal.Opened)}
        customer_ids |= {deal["customer_id"] for d in deal_ids if (deal := rows.get(DEALS, d))}
        rows.prefetch(CUSTOMERS, [(c,) for c in customer_ids])
        rows.prefetch(SPANS, [(c, seq) for c in customer_ids if (customer := rows.get(CUSTOMERS, c))
                              for seq in range(customer["span_count"])])

    def finish(self, rows: Rows) -> None:
        """Recompute the timeline of each customer the batch changed, once (not once per event: a
        customer with n deals costs O(n) per recompute), and write the intervals that changed."""
        changed: dict[str, int] = rows.pending.pop(self.name, {})
        tails = {c: _tail(_customer(c, rows), since, rows) for c, since in changed.items()}
        kept = {c: offset + _unchanged_prefix(tail, changed[c]) for c, (offset, tail) in tails.items()}
        rows.prefetch(INTERVALS, [(c, seq) for c, k in kept.items()
                                  for seq in range(k, _customer(c, rows)["interval_count"])])
        for customer_id, (offset, tail) in tails.items():
            _write_timeline(_customer(customer_id, rows), offset, tail, kept[customer_id], rows)


def _noting(handler: Callable[[Any, Rows], tuple[str, int]]) -> Callable[[Any, Rows], None]:
    """The handler, noting for `finish` the customer whose timeline it changed and from when (µs)."""
    def handle(event: Any, rows: Rows) -> None:
        customer_id, since = handler(event, rows)
        changed = rows.pending.setdefault(SegmentsReadModel.name, {})
        changed[customer_id] = min(since, changed.get(customer_id, since))
    return handle


def _customer(customer_id: str, rows: Rows) -> dict[str, Any]:
    """The customer's row; a new one if its deals are seen before its registration."""
    customer = rows.get(CUSTOMERS, customer_id)
    if customer is None:
        customer = {"customer_id": customer_id, "registered_at": None, "forgotten_at": None, "channel": None,
                    "span_count": 0, "interval_count": 0}
        rows.put(CUSTOMERS, customer)
    return customer


def _registered(event: Customer.Registered, rows: Rows) -> tuple[str, int]:
    customer = _customer(str(event.originator_id), rows)
    customer.update(registered_at=micros(event.occurred_at), channel=event.channel)
    rows.put(CUSTOMERS, customer)
    return customer["customer_id"], customer["registered_at"]


def _forgotten(event: Customer.Forgotten, rows: Rows) -> tuple[str, int]:
    customer = _customer(str(event.originator_id), rows)
    customer["forgotten_at"] = micros(event.occurred_at)
    rows.put(CUSTOMERS, customer)
    return customer["customer_id"], customer["forgotten_at"]


def _touched(event: Customer.TouchLogged, rows: Rows) -> None:
    rows.put(TOUCHES, {"customer_id": str(event.originator_id), "seq": event.originator_version,
                       "channel": event.channel, "touched_at": micros(event.occurred_at)})


def _opened(event: Deal.Opened, rows: Rows) -> tuple[str, int]:
    customer = _customer(str(event.customer_id), rows)
    deal = {"deal_id": str(event.originator_id), "customer_id": customer["customer_id"],
            "pipeline": event.pipeline, "currency": event.currency, "amount_cents": cents(event.amount),
            "span_seq": None}
    at = micros(event.occurred_at)
    _start_span(deal, customer, OPEN, at, rows)
    return customer["customer_id"], at


def _amount_changed(event: Deal.AmountChanged, rows: Rows) -> None:
    deal = _deal(event, rows)
    deal["amount_cents"] = cents(event.new_amount)
    rows.put(DEALS, deal)


def _won(event: Deal.Won, rows: Rows) -> tuple[str, int]:
    return _change_span(event, WON, rows)


def _lost(event: Deal.Lost, rows: Rows) -> tuple[str, int]:
    return _change_span(event, None, rows)


def _reopened(event: Deal.Reopened, rows: Rows) -> tuple[str, int]:
    return _change_span(event, OPEN, rows)


def _deal(event: Any, rows: Rows) -> dict[str, Any]:
    deal = rows.get(DEALS, str(event.originator_id))
    assert deal is not None, f"deal {event.originator_id} changed before it was opened"
    return deal


def _change_span(event: Any, kind: str | None, rows: Rows) -> tuple[str, int]:
    """End the deal's current span (open, or won) and start one of `kind` (None: none, it was lost)."""
    deal = _deal(event, rows)
    customer = _customer(deal["customer_id"], rows)
    at = micros(event.occurred_at)
    if deal["span_seq"] is not None:
        rows.put(SPANS, {**_span(deal["customer_id"], deal["span_seq"], rows), "end_at": at})
        deal["span_seq"] = None
        rows.put(DEALS, deal)
    if kind is not None:
        _start_span(deal, customer, kind, at, rows)
    return customer["customer_id"], at


def _span(customer_id: str, seq: int, rows: Rows) -> dict[str, Any]:
    span = rows.get(SPANS, customer_id, seq)
    assert span is not None, f"span {seq} of customer {customer_id} is missing"
    return span


def _start_span(deal: dict[str, Any], customer: dict[str, Any], kind: str, at: int, rows: Rows) -> None:
    seq = customer["span_count"]
    rows.put(SPANS, {"customer_id": customer["customer_id"], "seq": seq, "deal_id": deal["deal_id"], "kind": kind,
                     "pipeline": deal["pipeline"], "start_at": at, "end_at": None,
                     "amount_cents": deal["amount_cents"], "currency": deal["currency"]})
    customer["span_count"] = seq + 1
    rows.put(CUSTOMERS, customer)
    deal["span_seq"] = seq
    rows.put(DEALS, deal)


def _tail(customer: dict[str, Any], since: int, rows: Rows) -> tuple[int, list[SegmentInterval]]:
    """The customer's timeline from the seq returned on: from the start, or for a customer with many
    intervals, from the last stored one that ends before `since` (the earliest instant the batch changed).

    Evaluating only from there spares a long unchanged past: a new deal of a customer with 4,000 deals
    made a sweep through all of its ≈ 11,600 intervals.
    """
    stored = customer["interval_count"]
    unchanged = _ending_before(customer["customer_id"], stored, since, rows) if stored >= RESUME_FROM else 0
    if unchanged == 0:
        return 0, _timeline(customer, rows)
    after = _stored_interval(_interval(customer["customer_id"], unchanged - 1, rows))
    return unchanged - 1, _timeline(customer, rows, after)


def _ending_before(customer_id: str, stored: int, since: int, rows: Rows) -> int:
    """How many of the customer's stored intervals end before `since`, by bisection (they are in time
    order: ≈ 14 reads for 11,600 intervals)."""
    low, high = 0, stored
    while low < high:
        middle = (low + high) // 2
        valid_to = _interval(customer_id, middle, rows)["valid_to"]
        if valid_to is not None and valid_to < since:
            low = middle + 1
        else:
            high = middle
    return low


def _interval(customer_id: str, seq: int, rows: Rows) -> dict[str, Any]:
    interval = rows.get(INTERVALS, customer_id, seq)
    assert interval is not None, f"interval {seq} of customer {customer_id} is missing"
    return interval


def _stored_interval(row: dict[str, Any]) -> SegmentInterval:
    """An interval as `_interval_row` stored it."""
    segment = Segment(row["recency"], row["frequency"], row["monetary"], Decimal(row["monetary_cents"]).scaleb(-2),
                      row["open_deals"], _instant(row["last_purchase_at"]), row["preferred_pipeline"])
    return SegmentInterval(from_micros(row["valid_from"]), _instant(row["valid_to"]), segment,
                           from_micros(row["tier_since"]))


def _timeline(customer: dict[str, Any], rows: Rows, after: SegmentInterval | None = None) -> list[SegmentInterval]:
    """The customer's segment timeline from all its spans known so far (from `after` on, if given)."""
    customer_id = customer["customer_id"]
    spans = [_span(customer_id, seq, rows) for seq in range(customer["span_count"])]
    purchases = [Purchase(from_micros(s["start_at"]), Decimal(s["amount_cents"]).scaleb(-2), s["currency"],
                          s["pipeline"], _instant(s["end_at"])) for s in spans if s["kind"] == WON]
    open_deals = [OpenDeal(from_micros(s["start_at"]), _instant(s["end_at"])) for s in spans if s["kind"] == OPEN]
    starts = [customer["registered_at"], *(s["start_at"] for s in spans)]
    start = from_micros(min(s for s in starts if s is not None))
    return segment_timeline(start, _instant(customer["forgotten_at"]), purchases, open_deals, after)


def _unchanged_prefix(timeline: list[SegmentInterval], since: int) -> int:
    """How many leading intervals nothing from `since` on can have changed: those ending before it.

    The batch only added facts from `since` on (spans starting, spans ending, a registration or a
    forgetting then), and the segment at an instant depends only on facts up to it; an interval
    ending exactly at `since` may now run on, so it is not kept.
    """
    cut = from_micros(since)
    return next((n for n, interval in enumerate(timeline)
                 if interval.valid_to is None or interval.valid_to >= cut), len(timeline))


def _write_timeline(customer: dict[str, Any], offset: int, tail: list[SegmentInterval], kept: int,
                    rows: Rows) -> None:
    """Write the intervals from `kept` on that differ from the stored ones (`tail` holds those from
    `offset` on); supersede rows no longer there."""
    customer_id, stored, count = customer["customer_id"], customer["interval_count"], offset + len(tail)
    for seq in range(kept, max(count, stored)):
        row = _interval_row(customer_id, seq, tail[seq - offset]) if seq < count else {
            **dict.fromkeys(INTERVALS.column_names), "customer_id": customer_id, "seq": seq,
            "valid_from": 0, "valid_to": 0}
        if seq >= stored or rows.get(INTERVALS, customer_id, seq) != row:  # (rows past `stored` are not live)
            rows.put(INTERVALS, row)
    customer["interval_count"] = count
    rows.put(CUSTOMERS, customer)


def _interval_row(customer_id: str, seq: int, interval: SegmentInterval) -> dict[str, Any]:
    segment = interval.segment
    return {"customer_id": customer_id, "seq": seq, "valid_from": micros(interval.valid_from),
            "valid_to": _micros(interval.valid_to), "tier": segment.tier, "tier_since": micros(interval.tier_since),
            "recency": segment.recency, "frequency": segment.frequency, "monetary": segment.monetary,
            "monetary_cents": cents(segment.monetary_amount), "open_deals": segment.open_deals,
            "last_purchase_at": _micros(segment.last_purchase_at), "preferred_pipeline": segment.preferred_pipeline}


def _instant(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


# --- queries ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerSegment:
    """One customer's scores, tier and preferences as of an instant."""

    customer_id: UUID
    as_of: datetime
    tier: str
    tier_since: datetime
    recency: int
    frequency: int
    monetary: int
    monetary_cents: int  # CNY won in the 365 days up to `as_of`
    open_deals: int
    last_purchase_at: datetime | None
    preferred_channel: str | None  # most frequent touch channel, else the acquisition channel
    preferred_pipeline: str | None  # the pipeline of most purchases

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["customer_id"] = str(self.customer_id)
        for name in ("as_of", "tier_since", "last_purchase_at"):
            result[name] = result[name] and result[name].isoformat()
        return result


@dataclass(frozen=True)
class TierCount:
    tier: str
    customers: int
    value_cents: int  # CNY their purchases of the last 365 days add up to
    average_recency: float | None
    average_frequency: float | None
    average_monetary: float | None


@dataclass(frozen=True)
class Membership:
    """A stay in a tier: `[entered_at, left_at)`, left_at None while it lasts."""

    tier: str
    entered_at: datetime
    left_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "entered_at": self.entered_at.isoformat(),
                "left_at": self.left_at and self.left_at.isoformat()}


@dataclass(frozen=True)
class Movement:
    """How many customers were in `from_tier` at one instant and in `to_tier` at another (None: in none)."""

    from_tier: str | None
    to_tier: str | None
    customers: int


_COLUMNS = ("customer_id, tier, tier_since, recency, frequency, monetary, monetary_cents, open_deals, "
            "last_purchase_at, preferred_pipeline")


class SegmentQueries:
    """Answers segment questions as of any instant from the read model's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def segment_of(self, customer_id: UUID, as_of: datetime) -> CustomerSegment | None:
        """The customer's segment at `as_of`; None if it was not (or no longer) a customer then."""
        found = self._segments(as_of, " AND customer_id = ?", (str(customer_id),))
        return found[0] if found else None

    def members(self, tier: str, as_of: datetime, limit: int = 50, offset: int = 0) -> list[CustomerSegment]:
        """Customers in `tier` at `as_of`, most CNY won in the last 365 days first."""
        return self._segments(as_of, " AND tier = ?", (tier,), limit, offset)

    def tier_counts(self, as_of: datetime) -> list[TierCount]:
        """Per tier, in TIERS order: customers, their value and average R, F and M."""
        t = micros(as_of)
        found = {row[0]: [int(n) for n in row[1:]] for row in self.store.query(
            "SELECT tier, COUNT(*), SUM(monetary_cents), SUM(recency), SUM(frequency), SUM(monetary) "
            f"FROM segments_intervals WHERE {_COVERING} GROUP BY tier", [t, t])}
        counts = []
        for tier in TIERS:
            count, value, *sums = found.get(tier, [0] * 5)
            counts.append(TierCount(tier, count, value, *(total / count if count else None for total in sums)))
        return counts

    def history(self, customer_id: UUID, as_of: datetime | None = None) -> list[Membership]:
        """The customer's stays in each tier, oldest first; only those begun by `as_of` if given.

        Without `as_of` the last stays may end in the future: when, with no new deal, ageing purchases
        move the customer to another tier.
        """
        t = micros(as_of) if as_of else None
        begun = " AND valid_from <= ?" if t is not None else ""
        rows = self.store.query(
            "SELECT tier, valid_from, valid_to FROM segments_intervals WHERE customer_id = ? "
            f"AND (valid_to IS NULL OR valid_to > valid_from){begun} ORDER BY valid_from",
            [str(customer_id), *([t] if t is not None else [])])
        stays: list[Membership] = []
        for tier, valid_from, valid_to in rows:
            left = None if valid_to is None or (t is not None and valid_to > t) else from_micros(valid_to)
            if stays and stays[-1].tier == tier:
                stays[-1] = Membership(tier, stays[-1].entered_at, left)
            else:
                stays.append(Membership(tier, from_micros(valid_from), left))
        return stays

    def movements(self, start: datetime, end: datetime) -> list[Movement]:
        """How many customers changed tier between `start` and `end`, per (tier then, tier after)."""
        before, after = self._tiers(start), self._tiers(end)
        moves = Counter((before.get(c), after.get(c)) for c in before.keys() | after.keys()
                        if before.get(c) != after.get(c))
        order = {tier: i for i, tier in enumerate((None, *TIERS))}
        pairs = sorted(moves, key=lambda pair: (order[pair[0]], order[pair[1]]))
        return [Movement(from_tier, to_tier, moves[from_tier, to_tier]) for from_tier, to_tier in pairs]

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every figure of the read model as of `as_of`, JSON-able."""
        segments = self._segments(as_of)
        return {
            "as_of": as_of.isoformat(),
            "tiers": [asdict(count) for count in self.tier_counts(as_of)],
            "customers": {str(s.customer_id): s.to_dict() for s in segments},
            "history": {str(s.customer_id): [m.to_dict() for m in self.history(s.customer_id, as_of)]
                        for s in segments},
            "movements": [asdict(m) for m in self.movements(as_of - timedelta(days=MOVEMENT_DAYS), as_of)],
        }

    def _tiers(self, as_of: datetime) -> dict[str, str]:
        t = micros(as_of)
        return dict(self.store.query(f"SELECT customer_id, tier FROM segments_intervals WHERE {_COVERING}", [t, t]))

    def _segments(self, as_of: datetime, where: str = "", params: tuple[Any, ...] = (), limit: int | None = None,
                  offset: int = 0) -> list[CustomerSegment]:
        """Segments at `as_of` of the customers matching `where`, most valuable first."""
        t = micros(as_of)
        page = " LIMIT ? OFFSET ?" if limit is not None else ""
        rows = self.store.query(
            f"SELECT {_COLUMNS} FROM segments_intervals WHERE {_COVERING}{where} "
            f"ORDER BY monetary_cents DESC, recency DESC, customer_id{page}",
            [t, t, *params, *([limit, offset] if limit is not None else [])])
        channels = self._preferred_channels([row[0] for row in rows], t)
        return [CustomerSegment(UUID(customer_id), as_of, tier, from_micros(since), r, f, m, value, open_deals,
                                _instant(last), channels.get(customer_id), pipeline)
                for customer_id, tier, since, r, f, m, value, open_deals, last, pipeline in rows]

    def _preferred_channels(self, customer_ids: list[str], t: int) -> dict[str, str | None]:
        """Most frequent touch channel by `t` (ties alphabetical), else the acquisition channel."""
        touches: dict[str, list[str]] = {}
        acquired: dict[str, str] = {}
        for start in range(0, len(customer_ids), CHUNK):
            chunk = customer_ids[start:start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            for customer_id, channel, count in self.store.query(
                "SELECT customer_id, channel, COUNT(*) FROM segments_touches "
                f"WHERE touched_at <= ? AND customer_id IN ({marks}) GROUP BY customer_id, channel", [t, *chunk]):
                touches.setdefault(customer_id, []).extend([channel] * count)
            acquired.update(self.store.query(
                f"SELECT customer_id, channel FROM segments_customers WHERE registered_at <= ? "
                f"AND customer_id IN ({marks})", [t, *chunk]))
        return {c: most_frequent(touches.get(c, ())) or acquired.get(c) for c in customer_ids}
