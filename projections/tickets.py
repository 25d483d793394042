"""The service-ticket read model: backlog, response and resolution times, SLA, CSAT and the service funnel.

A ticket's status and assignee become versions `[valid_from, valid_to)`, each resolution an interval
`[resolved_at, reopened_at)`, each rating and each won deal a dated row, all in business time. Every
figure is then answerable as of any instant T from the rows that had begun by T.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.deal import Deal
from domain.ticket import CLOSED, RESOLVED, WORKING_STATUSES, Ticket
from domain.vocabulary import SLA_HOURS, TICKET_PRIORITIES, TICKET_STATUSES
from projections.base import ReadModel, Rows
from projections.funnel.report import percentile
from projections.tables import Table, from_micros, micros
from domain.personal_data import mark
from domain.service_levels import SATISFIED_SCORE
from projections.ports import Store, UnsealAll

OPEN = "open"
UNASSIGNED = "(unassigned)"
HOUR_MICROS = 3_600_000_000

TICKETS = Table(
    "tickets_tickets",
    (("ticket_id", "TEXT"), ("customer_id", "TEXT"), ("priority", "TEXT"), ("subject", "TEXT"),
     ("opened_at", "BIGINT"), ("first_response_at", "BIGINT"), ("first_resolved_at", "BIGINT"),
     ("status", "TEXT"), ("assignee", "TEXT"), ("version_seq", "INTEGER"), ("version_from", "BIGINT"),
     ("resolution_seq", "INTEGER"), ("resolved_at", "BIGINT")),
    ("ticket_id",),
    indexes=(("opened_at",),),
)
VERSIONS = Table(
    "tickets_versions",
    (("ticket_id", "TEXT"), ("seq", "INTEGER"), ("status", "TEXT"), ("assignee", "TEXT"),
     ("valid_from", "BIGINT"), ("valid_to", "BIGINT")),
    ("ticket_id", "seq"),
)
RESOLUTIONS = Table(
    "tickets_resolutions",
    (("ticket_id", "TEXT"), ("seq", "INTEGER"), ("resolved_at", "BIGINT"), ("reopened_at", "BIGINT")),
    ("ticket_id", "seq"),
)
RATINGS = Table(
    "tickets_ratings",
    (("ticket_id", "TEXT"), ("seq", "INTEGER"), ("customer_id", "TEXT"), ("assignee", "TEXT"),
     ("score", "INTEGER"), ("rated_at", "BIGINT")),
    ("ticket_id", "seq"),
    indexes=(("rated_at",),),
)
DEALS = Table("tickets_deals", (("deal_id", "TEXT"), ("customer_id", "TEXT")), ("deal_id",))
WINS = Table(
    "tickets_wins",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("customer_id", "TEXT"), ("won_at", "BIGINT")),
    ("deal_id", "seq"),
    indexes=(("won_at",),),
)


class TicketsReadModel(ReadModel):
    """Service tickets in business time, plus the deal wins that turn satisfied customers loyal."""

    name = "tickets"
    tables = (TICKETS, VERSIONS, RESOLUTIONS, RATINGS, DEALS, WINS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Ticket.Opened: _opened,
            Ticket.Assigned: _assigned,
            Ticket.StatusChanged: _status_changed,
            Ticket.Resolved: _resolved,
            Ticket.Reopened: _reopened,
            Ticket.Closed: _closed,
            Ticket.SatisfactionRated: _rated,
            Deal.Opened: _deal_opened,
            Deal.Won: _deal_won,
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        rows.prefetch(TICKETS, [(str(e.originator_id),) for e in events
                                if isinstance(e, Ticket.Event) and not isinstance(e, Ticket.Opened)])
        rows.prefetch(DEALS, [(str(e.originator_id),) for e in events if isinstance(e, Deal.Won)])


def _opened(event: Ticket.Opened, rows: Rows) -> None:
    at = micros(event.occurred_at)
    ticket = {
        "ticket_id": str(event.originator_id), "customer_id": str(event.customer_id), "priority": event.priority,
        "subject": mark(event.subject), "opened_at": at, "first_response_at": None, "first_resolved_at": None,
        "status": OPEN, "assignee": None, "version_seq": event.originator_version, "version_from": at,
        "resolution_seq": None, "resolved_at": None,
    }
    rows.put(TICKETS, ticket)
    rows.put(VERSIONS, _version(ticket, valid_to=None))


def _assigned(event: Ticket.Assigned, rows: Rows) -> None:
    _new_version(_ticket(event, rows), event, rows, assignee=event.assignee)


def _status_changed(event: Ticket.StatusChanged, rows: Rows) -> None:
    ticket = _ticket(event, rows)
    if event.from_status == OPEN:
        _respond(ticket, event)
    _new_version(ticket, event, rows, status=event.to_status)


def _resolved(event: Ticket.Resolved, rows: Rows) -> None:
    ticket = _ticket(event, rows)
    at = micros(event.occurred_at)
    _respond(ticket, event)
    if ticket["first_resolved_at"] is None:
        ticket["first_resolved_at"] = at
    ticket.update(resolution_seq=event.originator_version, resolved_at=at)
    rows.put(RESOLUTIONS, _resolution(ticket, reopened_at=None))
    _new_version(ticket, event, rows, status=RESOLVED)


def _reopened(event: Ticket.Reopened, rows: Rows) -> None:
    ticket = _ticket(event, rows)
    rows.put(RESOLUTIONS, _resolution(ticket, reopened_at=micros(event.occurred_at)))
    ticket.update(resolution_seq=None, resolved_at=None)
    _new_version(ticket, event, rows, status=OPEN)


def _closed(event: Ticket.Closed, rows: Rows) -> None:
    _new_version(_ticket(event, rows), event, rows, status=CLOSED)


def _rated(event: Ticket.SatisfactionRated, rows: Rows) -> None:
    ticket = _ticket(event, rows)
    rows.put(RATINGS, {"ticket_id": ticket["ticket_id"], "seq": event.originator_version,
                       "customer_id": ticket["customer_id"], "assignee": ticket["assignee"],
                       "score": event.score, "rated_at": micros(event.occurred_at)})


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    rows.put(DEALS, {"deal_id": str(event.originator_id), "customer_id": str(event.customer_id)})


def _deal_won(event: Deal.Won, rows: Rows) -> None:
    deal = rows.get(DEALS, str(event.originator_id))
    assert deal is not None, f"deal {event.originator_id} was won before it was opened"
    rows.put(WINS, {"deal_id": deal["deal_id"], "seq": event.originator_version,
                    "customer_id": deal["customer_id"], "won_at": micros(event.occurred_at)})


def _ticket(event: Any, rows: Rows) -> dict[str, Any]:
    ticket = rows.get(TICKETS, str(event.originator_id))
    assert ticket is not None, f"ticket {event.originator_id} changed before it was opened"
    return ticket


def _respond(ticket: dict[str, Any], event: Any) -> None:
    """The first agent action answers the ticket."""
    if ticket["first_response_at"] is None:
        ticket["first_response_at"] = micros(event.occurred_at)


def _new_version(ticket: dict[str, Any], event: Any, rows: Rows, **changes: Any) -> None:
    """End the ticket's current status/assignee version at the event and begin one with `changes`."""
    at = micros(event.occurred_at)
    rows.put(VERSIONS, _version(ticket, valid_to=at))
    ticket.update(changes, version_seq=event.originator_version, version_from=at)
    rows.put(VERSIONS, _version(ticket, valid_to=None))
    rows.put(TICKETS, ticket)


def _version(ticket: dict[str, Any], valid_to: int | None) -> dict[str, Any]:
    return {"ticket_id": ticket["ticket_id"], "seq": ticket["version_seq"], "status": ticket["status"],
            "assignee": ticket["assignee"], "valid_from": ticket["version_from"], "valid_to": valid_to}


def _resolution(ticket: dict[str, Any], reopened_at: int | None) -> dict[str, Any]:
    return {"ticket_id": ticket["ticket_id"], "seq": ticket["resolution_seq"],
            "resolved_at": ticket["resolved_at"], "reopened_at": reopened_at}


# --- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """Tickets per status (all that exist), and the backlog (still being worked on) per priority and assignee."""

    per_status: dict[str, int]
    total: int
    per_priority: dict[str, int]
    per_assignee: dict[str, int]


@dataclass(frozen=True)
class Durations:
    count: int
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class SlaBreach:
    """A ticket past a service-level target; hours are taken so far when the step is still pending."""

    ticket_id: UUID
    customer_id: UUID
    priority: str
    subject: str
    status: str
    assignee: str | None
    opened_at: datetime
    first_response_late: bool
    resolution_late: bool
    first_response_hours: float
    resolution_hours: float


@dataclass(frozen=True)
class Sla:
    first_response_breaches: dict[str, int]
    resolution_breaches: dict[str, int]
    breaching: list[SlaBreach]


@dataclass(frozen=True)
class Satisfaction:
    ratings: int
    average: float | None
    satisfied_share: float | None


@dataclass(frozen=True)
class Csat:
    overall: Satisfaction
    per_assignee: dict[str, Satisfaction]


@dataclass(frozen=True)
class ServiceFunnel:
    """Tickets opened → resolved at least once → rated → rated 4–5; then satisfied customers → loyal ones."""

    feedback: int
    resolved: int
    surveyed: int
    satisfied: int
    satisfied_customers: int
    loyal: int

    def steps(self) -> list[tuple[str, int, str, float | None]]:
        """(step, count, unit, conversion from the previous step)."""
        counts = [("feedback", self.feedback, self.feedback), ("resolved", self.resolved, self.feedback),
                  ("surveyed", self.surveyed, self.resolved), ("satisfied", self.satisfied, self.surveyed),
                  ("loyal", self.loyal, self.satisfied_customers)]
        return [(step, count, "customers" if step == "loyal" else "tickets", _ratio(count, base) if i else None)
                for i, (step, count, base) in enumerate(counts)]


@dataclass(frozen=True)
class TicketReport:
    as_of: datetime
    backlog: Backlog
    first_response: Durations
    resolution: Durations
    sla: Sla
    csat: Csat
    funnel: ServiceFunnel

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["as_of"] = self.as_of.isoformat()
        for breach in result["sla"]["breaching"]:
            breach.update(ticket_id=str(breach["ticket_id"]), customer_id=str(breach["customer_id"]),
                          opened_at=breach["opened_at"].isoformat())
        result["funnel"]["steps"] = [{"step": step, "count": count, "unit": unit, "conversion": conversion}
                                     for step, count, unit, conversion in self.funnel.steps()]
        return result


@dataclass(frozen=True)
class _TicketAsOf:
    """One ticket as it stood at the report's instant; times after the instant are None."""

    ticket_id: str
    customer_id: str
    priority: str
    subject: str
    opened_at: int
    responded_at: int | None
    first_resolved_at: int | None
    status: str
    assignee: str | None
    resolved_at: int | None  # the resolution that stands at the instant


@dataclass(frozen=True)
class _Rating:
    ticket_id: str
    customer_id: str
    assignee: str | None
    score: int
    rated_at: int


class TicketQueries:
    """Answers service questions as of an instant from the tickets read model.

    A ticket's subject is kept sealed (it is about the customer) and opened here with the log's keys
    (`unseal_all`, e.g. the key store's `unseal_all_marks`): once forgotten it reads "(forgotten)".
    """

    def __init__(self, store: Store, unseal_all: UnsealAll) -> None:
        self.store = store
        self.unseal_all = unseal_all

    def report(self, as_of: datetime) -> TicketReport:
        t = micros(as_of)
        tickets, ratings = self._tickets(t), self._ratings(t)
        return TicketReport(
            as_of=as_of,
            backlog=_backlog(tickets),
            first_response=_durations([k.responded_at - k.opened_at for k in tickets if k.responded_at is not None]),
            resolution=_durations([k.resolved_at - k.opened_at for k in tickets if k.resolved_at is not None]),
            sla=_sla(tickets, t, self.unseal_all),
            csat=_csat(ratings),
            funnel=_funnel(tickets, ratings, self._wins(t)),
        )

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every figure of the read model as of `as_of`, JSON-able."""
        return self.report(as_of).to_dict()

    def _tickets(self, t: int) -> list[_TicketAsOf]:
        rows = self.store.query(
            "SELECT k.ticket_id, k.customer_id, k.priority, k.subject, k.opened_at, k.first_response_at, "
            "k.first_resolved_at, v.status, v.assignee, r.resolved_at FROM tickets_tickets k "
            "JOIN tickets_versions v ON v.ticket_id = k.ticket_id AND v.valid_from <= ? "
            "AND (v.valid_to IS NULL OR v.valid_to > ?) "
            "LEFT JOIN tickets_resolutions r ON r.ticket_id = k.ticket_id AND r.resolved_at <= ? "
            "AND (r.reopened_at IS NULL OR r.reopened_at > ?) WHERE k.opened_at <= ?", [t] * 5)
        return [_TicketAsOf(ticket_id, customer_id, priority, subject, opened_at, _by(responded, t),
                            _by(first_resolved, t), status, assignee, resolved_at)
                for (ticket_id, customer_id, priority, subject, opened_at, responded, first_resolved, status,
                     assignee, resolved_at) in rows]


    def _ratings(self, t: int) -> list[_Rating]:
        return [_Rating(*row) for row in self.store.query(
            "SELECT ticket_id, customer_id, assignee, score, rated_at FROM tickets_ratings WHERE rated_at <= ?", [t])]

    def _wins(self, t: int) -> dict[str, list[int]]:
        """Customer → instants of the deals they won by `t`."""
        wins: dict[str, list[int]] = defaultdict(list)
        for customer_id, won_at in self.store.query("SELECT customer_id, won_at FROM tickets_wins WHERE won_at <= ?",
                                                    [t]):
            wins[customer_id].append(won_at)
        return wins


def _by(instant: int | None, t: int) -> int | None:
    return instant if instant is not None and instant <= t else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _backlog(tickets: list[_TicketAsOf]) -> Backlog:
    per_status = dict.fromkeys(TICKET_STATUSES, 0)
    per_priority = dict.fromkeys(TICKET_PRIORITIES, 0)
    per_assignee: dict[str, int] = defaultdict(int)
    for ticket in tickets:
        per_status[ticket.status] += 1
        if ticket.status in WORKING_STATUSES:
            per_priority[ticket.priority] += 1
            per_assignee[ticket.assignee or UNASSIGNED] += 1
    return Backlog(per_status, sum(per_priority.values()), per_priority, dict(sorted(per_assignee.items())))


def _durations(lengths: list[int]) -> Durations:
    median, p90 = percentile(lengths, 0.5), percentile(lengths, 0.9)
    return Durations(len(lengths), None if median is None else median / HOUR_MICROS,
                     None if p90 is None else p90 / HOUR_MICROS)


def _sla(tickets: list[_TicketAsOf], t: int, unseal: Callable[[list[str]], list[str]]) -> Sla:
    """A step is late when it took, or has so far taken, longer than the ticket's priority allows."""
    first_response, resolution = dict.fromkeys(TICKET_PRIORITIES, 0), dict.fromkeys(TICKET_PRIORITIES, 0)
    breaching = []
    for k in sorted(tickets, key=_unresolved_oldest_then_resolved_newest):
        response_hours, resolution_hours = _hours(k.opened_at, k.responded_at, t), _hours(k.opened_at, k.resolved_at, t)
        response_limit, resolution_limit = SLA_HOURS[k.priority]
        response_late, resolution_late = response_hours > response_limit, resolution_hours > resolution_limit
        first_response[k.priority] += response_late
        resolution[k.priority] += resolution_late
        if response_late or resolution_late:
            breaching.append(SlaBreach(UUID(k.ticket_id), UUID(k.customer_id), k.priority, k.subject, k.status,
                                       k.assignee, from_micros(k.opened_at), response_late, resolution_late,
                                       response_hours, resolution_hours))
    subjects = unseal([breach.subject for breach in breaching])  # sealed in the read model; opened in one go
    return Sla(first_response, resolution, [replace(b, subject=s) for b, s in zip(breaching, subjects)])


def _unresolved_oldest_then_resolved_newest(k: _TicketAsOf) -> tuple[bool, int, str]:
    resolved = k.resolved_at is not None
    return resolved, -k.opened_at if resolved else k.opened_at, k.ticket_id


def _hours(start: int, done: int | None, t: int) -> float:
    """Hours from `start` to `done`, or to `t` while not done."""
    return ((t if done is None else done) - start) / HOUR_MICROS


def _satisfaction(scores: list[int]) -> Satisfaction:
    satisfied = sum(score >= SATISFIED_SCORE for score in scores)
    return Satisfaction(len(scores), _ratio(sum(scores), len(scores)), _ratio(satisfied, len(scores)))


def _csat(ratings: list[_Rating]) -> Csat:
    per_assignee: dict[str, list[int]] = defaultdict(list)
    for rating in ratings:
        per_assignee[rating.assignee or UNASSIGNED].append(rating.score)
    return Csat(_satisfaction([r.score for r in ratings]),
                {assignee: _satisfaction(scores) for assignee, scores in sorted(per_assignee.items())})


def _funnel(tickets: list[_TicketAsOf], ratings: list[_Rating], wins: dict[str, list[int]]) -> ServiceFunnel:
    """Loyal: a customer who won a deal after their first satisfied rating (both by the instant)."""
    first_satisfied: dict[str, int] = {}
    for r in ratings:
        if r.score >= SATISFIED_SCORE:
            first_satisfied[r.customer_id] = min(r.rated_at, first_satisfied.get(r.customer_id, r.rated_at))
    loyal = sum(any(won_at > rated_at for won_at in wins.get(customer, []))
                for customer, rated_at in first_satisfied.items())
    return ServiceFunnel(
        feedback=len(tickets),
        resolved=sum(k.first_resolved_at is not None for k in tickets),
        surveyed=len({r.ticket_id for r in ratings}),
        satisfied=len({r.ticket_id for r in ratings if r.score >= SATISFIED_SCORE}),
        satisfied_customers=len(first_satisfied),
        loyal=loyal,
    )
