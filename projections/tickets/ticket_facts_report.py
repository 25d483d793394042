"""The service-ticket report derived in Python from every row that had begun by an instant: the reference.

Every figure is answered from the rows that had begun by the instant T (versions and resolutions
covering T, ratings and wins dated by T); the rules (SLA targets, satisfied, loyal) are
`domain.service_levels`. Its cost grows with the history (every ticket opened by T is loaded): the plain
report is answered from pre-summed tallies instead (`summed_report`, `queries`), held equal to this one
by random histories (tests/unit/projections/tickets/test_summed_report.py); the grouped and
property-filtered reports are still answered here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from domain.service_levels import SLA_TARGETS, is_loyal, is_satisfied
from domain.ticket import WORKING_STATUSES
from domain.funnel_rules import conversion
from domain.vocabulary import TICKET_PRIORITIES, TICKET_STATUSES
from projections.funnel.report import percentile
from projections.ports import Store, UnsealAll
from projections.tables import from_micros, micros
from projections.tickets.ticket_dimensions import TicketGroups, customer_values_sql, missing, sort_key
from projections.tickets.rows import RatingRow

UNASSIGNED = "(unassigned)"
HOUR_MICROS = 3_600_000_000


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
    """Breaches per priority; `breaching` is one page of the breaching tickets (unresolved oldest first, then
    resolved newest first), `breaching_total` all of them."""

    first_response_breaches: dict[str, int]
    resolution_breaches: dict[str, int]
    breaching: list[SlaBreach]
    breaching_total: int = 0


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

    def steps(self) -> list[FunnelStep]:
        """Each step with its conversion from the previous one (none for the first)."""
        counts = [("feedback", self.feedback, self.feedback), ("resolved", self.resolved, self.feedback),
                  ("surveyed", self.surveyed, self.resolved), ("satisfied", self.satisfied, self.surveyed),
                  ("loyal", self.loyal, self.satisfied_customers)]
        return [_step(step, count, base if i else None) for i, (step, count, base) in enumerate(counts)]


class FunnelStep(NamedTuple):
    """A step of the service funnel. `not_yet`: of the previous step's, those that have not taken this one
    (yet: a ticket may still be resolved, rated, a customer still buy), so the conversion is a share so far;
    `conversion_note` says why a conversion is missing."""

    step: str
    count: int
    unit: str
    conversion: float | None
    not_yet: int | None
    conversion_note: str | None


def _step(step: str, count: int, base: int | None) -> FunnelStep:
    unit = "customers" if step == "loyal" else "tickets"
    if base is None:
        return FunnelStep(step, count, unit, None, None, "the first step")
    rate = conversion(base, count)
    return FunnelStep(step, count, unit, rate, base - count, None if rate is not None else f"no {_previous(step)}")


def _previous(step: str) -> str:
    return {"resolved": "tickets", "surveyed": "resolved tickets", "satisfied": "rated tickets",
            "loyal": "satisfied customers"}[step]


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
        result["funnel"]["steps"] = [step._asdict() for step in self.funnel.steps()]
        return result


class BreachPage(NamedTuple):
    """Which breaching tickets a report lists: `limit` of them (None: all) from `offset`, in the report's order."""

    offset: int = 0
    limit: int | None = None

    def of(self, items: list[SlaBreach]) -> list[SlaBreach]:
        return items[self.offset:None if self.limit is None else self.offset + self.limit]


EVERY_BREACH = BreachPage()


@dataclass(frozen=True)
class TicketAsOf:
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


class FactsTicketQueries:
    """Answers service questions as of an instant from every row of the tickets read model (the reference).

    A ticket's subject is kept sealed (it is about the customer) and opened here with the log's keys
    (`unseal_all`, e.g. the key store's `unseal_all_marks`): once forgotten it reads "(forgotten)".
    """

    def __init__(self, store: Store, unseal_all: UnsealAll) -> None:
        self.store = store
        self.unseal_all = unseal_all

    def report(self, as_of: datetime, properties: Sequence[tuple[str, str]] = (),
               page: BreachPage = EVERY_BREACH) -> TicketReport:
        """The report as of `as_of`, of the tickets whose customer then had every one of `properties`, listing
        the `page` of its breaching tickets."""
        t = micros(as_of)
        tickets = self._kept(self._tickets(t), t, properties)
        return self._report(as_of, tickets, _ratings_of(self._ratings(t), tickets), self._wins(t), page)

    def grouped(self, as_of: datetime, by: str, properties: Sequence[tuple[str, str]] = ()) -> TicketGroups:
        """One report per value of `by` (`projections.tickets.ticket_dimensions`) among the tickets `properties` keep,
        each computed as `report` computes the plain one; DomainError for an unknown axis or property name."""
        t = micros(as_of)
        tickets = self._kept(self._tickets(t), t, properties)
        value_of = self._values(by, t)
        per_value: dict[str | None, list[TicketAsOf]] = defaultdict(list)
        for ticket in tickets:
            per_value[value_of(ticket)].append(ticket)
        ratings, wins = self._ratings(t), self._wins(t)
        return TicketGroups(as_of, by, list(properties), [
            (value, self._report(as_of, per_value[value], _ratings_of(ratings, per_value[value]), wins))
            for value in sorted(per_value, key=sort_key)])

    def _values(self, by: str, t: int) -> Callable[[TicketAsOf], str | None]:
        if by == "owner":
            return lambda k: k.assignee
        if by == "priority":
            return lambda k: k.priority
        customers = self._customer_values(by, t)
        return lambda k: customers.get(k.customer_id, missing(by))

    def _customer_values(self, by: str, t: int) -> dict[str, str]:
        sql, params = customer_values_sql(by)
        return dict(self.store.query(sql, params + [t, t] if params else []))

    def _kept(self, tickets: list[TicketAsOf], t: int, properties: Sequence[tuple[str, str]]) -> list[TicketAsOf]:
        for name, value in properties:
            customers = self._customer_values(name, t)
            tickets = [k for k in tickets if customers.get(k.customer_id) == value]
        return tickets

    def _report(self, as_of: datetime, tickets: list[TicketAsOf], ratings: list[RatingRow],
                wins: dict[str, list[int]], page: BreachPage = EVERY_BREACH) -> TicketReport:
        t = micros(as_of)
        return TicketReport(
            as_of=as_of,
            backlog=_backlog(tickets),
            first_response=_durations([k.responded_at - k.opened_at for k in tickets if k.responded_at is not None]),
            resolution=_durations([k.resolved_at - k.opened_at for k in tickets if k.resolved_at is not None]),
            sla=_sla(tickets, t, self.unseal_all, page),
            csat=_csat(ratings),
            funnel=_funnel(tickets, ratings, wins),
        )

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every figure of the read model as of `as_of`, JSON-able."""
        return self.report(as_of).to_dict()

    def _tickets(self, t: int) -> list[TicketAsOf]:
        return tickets_as_of(self.store, t)

    def _ratings(self, t: int) -> list[RatingRow]:
        return [RatingRow(*row) for row in self.store.query(
            f"SELECT {', '.join(RatingRow._fields)} FROM tickets_ratings WHERE rated_at <= ?", [t])]

    def _wins(self, t: int) -> dict[str, list[int]]:
        """Customer → instants of the deals they won by `t`."""
        wins: dict[str, list[int]] = defaultdict(list)
        for customer_id, won_at in self.store.query("SELECT customer_id, won_at FROM tickets_wins WHERE won_at <= ?",
                                                    [t]):
            wins[customer_id].append(won_at)
        return wins


def tickets_as_of(store: Store, t: int, ids: Sequence[str] | None = None) -> list[TicketAsOf]:
    """Every ticket opened by `t` (or only those of `ids`) as it stood at `t`: one per version and standing
    resolution covering `t`."""
    only = f" AND k.ticket_id IN ({', '.join('?' * len(ids))})" if ids is not None else ""
    rows = store.query(
        "SELECT k.ticket_id, k.customer_id, k.priority, k.subject, k.opened_at, k.first_response_at, "
        "k.first_resolved_at, v.status, v.assignee, r.resolved_at FROM tickets_tickets k "
        "JOIN tickets_versions v ON v.ticket_id = k.ticket_id AND v.valid_from <= ? "
        "AND (v.valid_to IS NULL OR v.valid_to > ?) "
        "LEFT JOIN tickets_resolutions r ON r.ticket_id = k.ticket_id AND r.resolved_at <= ? "
        f"AND (r.reopened_at IS NULL OR r.reopened_at > ?) WHERE k.opened_at <= ?{only}", [t] * 5 + list(ids or []))
    return [TicketAsOf(ticket_id, customer_id, priority, subject, opened_at, known_by(responded, t),
                       known_by(first_resolved, t), status, assignee, resolved_at)
            for (ticket_id, customer_id, priority, subject, opened_at, responded, first_resolved, status,
                 assignee, resolved_at) in rows]


def _ratings_of(ratings: list[RatingRow], tickets: list[TicketAsOf]) -> list[RatingRow]:
    """The ratings of these tickets (all of them when they are all the tickets: no filter)."""
    ids = {k.ticket_id for k in tickets}
    return [r for r in ratings if r.ticket_id in ids]


def known_by(instant: int | None, t: int) -> int | None:
    """`instant` if it had come by `t`, else None (a step the ticket took after the report's instant)."""
    return instant if instant is not None and instant <= t else None


def _backlog(tickets: list[TicketAsOf]) -> Backlog:
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


def _sla(tickets: list[TicketAsOf], t: int, unseal: Callable[[list[str]], list[str]], page: BreachPage) -> Sla:
    """A step is late when it took, or has so far taken, longer than the ticket's priority allows."""
    first_response, resolution = dict.fromkeys(TICKET_PRIORITIES, 0), dict.fromkeys(TICKET_PRIORITIES, 0)
    breaching = []
    for k in sorted(tickets, key=_unresolved_oldest_then_resolved_newest):
        breach = breach_of(k, t)
        if breach is not None:
            first_response[k.priority] += breach.first_response_late
            resolution[k.priority] += breach.resolution_late
            breaching.append(breach)
    return Sla(first_response, resolution, unsealed(page.of(breaching), unseal), len(breaching))


def breach_of(k: TicketAsOf, t: int) -> SlaBreach | None:
    """The ticket's breach as of `t` (its subject still sealed), None when it is in time."""
    response_hours, resolution_hours = _hours(k.opened_at, k.responded_at, t), _hours(k.opened_at, k.resolved_at, t)
    target = SLA_TARGETS[k.priority]
    response_late, resolution_late = target.response_late(response_hours), target.resolution_late(resolution_hours)
    if not (response_late or resolution_late):
        return None
    return SlaBreach(UUID(k.ticket_id), UUID(k.customer_id), k.priority, k.subject, k.status, k.assignee,
                     from_micros(k.opened_at), response_late, resolution_late, response_hours, resolution_hours)


def unsealed(breaching: list[SlaBreach], unseal: Callable[[list[str]], list[str]]) -> list[SlaBreach]:
    subjects = unseal([breach.subject for breach in breaching])  # sealed in the read model; opened in one go
    return [replace(b, subject=s) for b, s in zip(breaching, subjects)]


def _unresolved_oldest_then_resolved_newest(k: TicketAsOf) -> tuple[bool, int, str]:
    resolved = k.resolved_at is not None
    return resolved, -k.opened_at if resolved else k.opened_at, k.ticket_id


def _hours(start: int, done: int | None, t: int) -> float:
    """Hours from `start` to `done`, or to `t` while not done."""
    return ((t if done is None else done) - start) / HOUR_MICROS


def _satisfaction(scores: list[int]) -> Satisfaction:
    satisfied = sum(is_satisfied(score) for score in scores)
    return Satisfaction(len(scores), sum(scores) / len(scores) if scores else None, conversion(len(scores), satisfied))


def _csat(ratings: list[RatingRow]) -> Csat:
    per_assignee: dict[str, list[int]] = defaultdict(list)
    for rating in ratings:
        per_assignee[rating.assignee or UNASSIGNED].append(rating.score)
    return Csat(_satisfaction([r.score for r in ratings]),
                {assignee: _satisfaction(scores) for assignee, scores in sorted(per_assignee.items())})


def _funnel(tickets: list[TicketAsOf], ratings: list[RatingRow], wins: dict[str, list[int]]) -> ServiceFunnel:
    """Loyal (`is_loyal`) counted from each customer's first satisfied rating, both by the instant."""
    first_satisfied: dict[str, int] = {}
    for r in ratings:
        if is_satisfied(r.score):
            first_satisfied[r.customer_id] = min(r.rated_at, first_satisfied.get(r.customer_id, r.rated_at))
    loyal = sum(is_loyal(rated_at, wins.get(customer, [])) for customer, rated_at in first_satisfied.items())
    return ServiceFunnel(
        feedback=len(tickets),
        resolved=sum(k.first_resolved_at is not None for k in tickets),
        surveyed=len({r.ticket_id for r in ratings}),
        satisfied=len({r.ticket_id for r in ratings if is_satisfied(r.score)}),
        satisfied_customers=len(first_satisfied),
        loyal=loyal,
    )
