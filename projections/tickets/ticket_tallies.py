"""The tickets read model's pre-summed tables: each ticket's and customer's share of the report as dated
changes, their sums per UTC year, month, dekad and day, and the few rows a report still reads one by one.

A ticket's share of the report as of T (its status count, its backlog priority and assignee while being
worked on, the class of its response and resolution times, its SLA lateness, its ratings, its funnel steps)
is a step function of T that changes only at instants its facts name: its versions' and resolutions'
bounds, its first response and resolution, its ratings, and the instants its response and resolution
become late (`LATE_AFTER`: opened + the first time its target calls late, unless answered or resolved by
then; the hours taken so far never decrease, so a step is late from one instant on). `ticket_share`
evaluates the reference's own per-ticket rule (`TicketFacts.as_of`: its query's join for one ticket;
`ticket_facts_report.breach_of`) at each of those instants; `tickets_changes` holds the differences, `tickets_tallies` their sums per period
(as `projections.campaigns.summed_tables`: a report adds ≤ 25 tallies and T's day of changes). A customer's
share (satisfied, loyal) is derived the same way from their ratings and wins.

Two figures are not sums: the exact median and p90 of the response and resolution times, and the list of
breaching tickets. For the first, the tallies hold a histogram of the times in classes 1/16 octave wide
(`duration_class`: ≤ 4.4 % apart), so the class holding the k-th time is known from the sums; its exact
times come from `tickets_durations` (one row per time and the stretch of T it counts in), read by
(kind, class): ≤ 370 rows a class on the 1M-event history (the figure grows with the history, slowly:
a class 16 times narrower would make each tally 16 times bigger). For the list, `tickets_listed`
holds the stretches of T during which a ticket is listed, unresolved ones by their length's bit length
(`span`), so that the tickets unresolved at T are found by one index range per two spans (those stabbing T,
about the backlog), and resolved ones are walked newest first: a page costs its length, not the history.

All are pure functions of the fact tables: after each batch the tickets and customers it touched are
derived again (a handful of rows each) and the tallies change by the difference (`refresh`); `derive`
computes them all from the fact tables, for the bulk fold (equal: test_summed_report).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from domain.service_levels import SLA_TARGETS, is_loyal, is_satisfied
from domain.ticket import WORKING_STATUSES
from projections.campaigns.summed_tables import (DAY_MICROS, Select, StepRow, TallyRow, periods, replace_steps, select_in,
                                                stored_steps, write_tallies)
from projections.campaigns.unit_steps import Share, Steps, add, merge, steps_of
from projections.read_model import Rows
from projections.tables import Table
from projections.tickets.ticket_facts_report import HOUR_MICROS, UNASSIGNED, TicketAsOf, breach_of, known_by
from projections.tickets.rows import RatingRow, ResolutionRow, TicketRow, VersionRow

LONG_SPAN = 51  # stretches of 2^50 µs (35 years) or more, or still open: no window
_SMALL = 1 << 20  # µs (≈ 1 s): times below it (and negative ones) share a class


class DurationRow(NamedTuple):
    """A response ("r") or resolution ("z") time of a ticket, counted as of every T in [valid_from, valid_to)."""

    ticket_id: str
    kind: str
    valid_from: int
    nth: int  # the same time counted twice at once (never, with consistent facts): 0, 1, …
    bin: int  # duration_class(value)
    value: int
    valid_to: int | None


class ListedRow(NamedTuple):
    """A ticket listed as breaching, unresolved (grp 0) or resolved (1), as of every T in [valid_from, valid_to)."""

    ticket_id: str
    grp: int
    valid_from: int
    nth: int
    opened_at: int
    span: int  # the stretch's length's bit length (LONG_SPAN: long or still open)
    valid_to: int | None


# Shaped as the campaigns' (`StepRow`: unit — "k" + a ticket's id, "c" + a customer's —, at, deltas; `TallyRow`),
# so that their code keeps both (`replace_steps`, `write_tallies`).
STEPS = Table("tickets_changes", (("unit", "TEXT"), ("at", "BIGINT"), ("deltas", "TEXT")), ("unit", "at"),
              indexes=(("at",),), json_columns=("deltas",), row_type=StepRow)
TALLIES = Table("tickets_tallies", (("grain", "TEXT"), ("period", "INTEGER"), ("deltas", "TEXT")),
                ("grain", "period"), json_columns=("deltas",), row_type=TallyRow)
DURATIONS = Table("tickets_durations",
                  (("ticket_id", "TEXT"), ("kind", "TEXT"), ("valid_from", "BIGINT"), ("nth", "INTEGER"),
                   ("bin", "INTEGER"), ("value", "BIGINT"), ("valid_to", "BIGINT")),
                  ("ticket_id", "kind", "valid_from", "nth"), indexes=(("kind", "bin", "value"),),
                  row_type=DurationRow)
LISTED = Table("tickets_listed",
               (("ticket_id", "TEXT"), ("grp", "INTEGER"), ("valid_from", "BIGINT"), ("nth", "INTEGER"),
                ("opened_at", "BIGINT"), ("span", "INTEGER"), ("valid_to", "BIGINT")),
               ("ticket_id", "grp", "valid_from", "nth"),
               # (grp, span, valid_from): the short unresolved stretches stabbing T; (grp, span, opened_at): the long
               # ones, oldest first; (grp, opened_at): the resolved ones, newest first
               indexes=(("grp", "span", "valid_from"), ("grp", "span", "opened_at"), ("grp", "opened_at")),
               row_type=ListedRow)
SUMMED_TABLES = (STEPS, TALLIES, DURATIONS, LISTED)


def duration_class(value: int) -> int:
    """A time's class, in the order of the times: -1 below zero, 0 below ≈ 1 s, then 16 per power of two."""
    if value < 0:
        return -1
    if value < _SMALL:
        return 0
    bits = value.bit_length()
    return (bits - 20) * 16 + ((value >> (bits - 5)) & 15) + 1


def _first_late(hours_late: Any, hours: int) -> int:
    """The shortest time (µs) the rule calls late, found around the target as the reference computes hours."""
    delta = hours * HOUR_MICROS
    while hours_late((delta - 1) / HOUR_MICROS):
        delta -= 1
    while not hours_late(delta / HOUR_MICROS):
        delta += 1
    return delta


LATE_AFTER = {priority: (_first_late(target.response_late, target.response_hours),
                         _first_late(target.resolution_late, target.resolution_hours))
              for priority, target in SLA_TARGETS.items()}
"""Priority → the shortest response and resolution times (µs) that are late."""


@dataclass
class TicketFacts:
    ticket: TicketRow
    versions: list[VersionRow] = field(default_factory=list)
    resolutions: list[ResolutionRow] = field(default_factory=list)
    ratings: list[RatingRow] = field(default_factory=list)

    def as_of(self, t: int) -> list[TicketAsOf]:
        """The ticket as the reference's query finds it at `t`: one per version and standing resolution."""
        k = self.ticket
        if k.opened_at > t:
            return []
        versions = [v for v in self.versions if v.valid_from <= t and (v.valid_to is None or v.valid_to > t)]
        standing = [r.resolved_at for r in self.resolutions
                    if r.resolved_at <= t and (r.reopened_at is None or r.reopened_at > t)] or [None]
        return [TicketAsOf(k.ticket_id, k.customer_id, k.priority, k.subject, k.opened_at,
                           known_by(k.first_response_at, t), known_by(k.first_resolved_at, t), v.status, v.assignee,
                           resolved)
                for v in versions for resolved in standing]

    def instants(self) -> list[int]:
        """Every instant the ticket's share may change at."""
        k = self.ticket
        response, resolution = LATE_AFTER.get(k.priority, (0, 0))
        found = {k.opened_at, k.opened_at + response, k.opened_at + resolution, k.first_response_at,
                 k.first_resolved_at, *(r.rated_at for r in self.ratings)}
        found.update(at for v in self.versions for at in (v.valid_from, v.valid_to))
        found.update(at for r in self.resolutions for at in (r.resolved_at, r.reopened_at))
        return sorted(at for at in found if at is not None and at >= k.opened_at)


class Derived(NamedTuple):
    steps: Steps
    durations: list[DurationRow]
    listed: list[ListedRow]


def ticket_share(facts: TicketFacts, t: int) -> tuple[Share, list[tuple[str, int]], list[int]]:
    """The ticket's share of the summed figures at `t`, its times then (kind, µs) and the groups it is listed in."""
    share: Share = {}
    times: list[tuple[str, int]] = []
    groups: list[int] = []
    rows = facts.as_of(t)
    for k in rows:
        add(share, "o", 1)
        add(share, f"s|{k.status}", 1)
        if k.status in WORKING_STATUSES:
            add(share, f"p|{k.priority}", 1)
            add(share, f"a|{k.assignee or UNASSIGNED}", 1)
        if k.responded_at is not None:
            times.append(("r", k.responded_at - k.opened_at))
        if k.resolved_at is not None:
            times.append(("z", k.resolved_at - k.opened_at))
        add(share, "x", k.first_resolved_at is not None)
        breach = breach_of(k, t)
        if breach is not None:
            add(share, "b", 1)
            add(share, f"f|{k.priority}", breach.first_response_late)
            add(share, f"l|{k.priority}", breach.resolution_late)
            groups.append(int(k.resolved_at is not None))
    for kind, value in times:
        add(share, f"{kind}|{duration_class(value)}", 1)
    rated = [r for r in facts.ratings if r.rated_at <= t] if rows else []
    for r in rated:
        who = r.assignee or UNASSIGNED
        add(share, f"n|{who}", 1)
        add(share, f"m|{who}", r.score)
        add(share, f"q|{who}", is_satisfied(r.score))
    add(share, "u", bool(rated))
    add(share, "v", any(is_satisfied(r.score) for r in rated))
    return share, times, groups


def derive_ticket(facts: TicketFacts) -> Derived:
    """The ticket's steps, and its time and listing stretches."""
    shares, durations, listed = [], _Stretches(), _Stretches()
    for at in facts.instants():
        share, times, groups = ticket_share(facts, at)
        shares.append((at, share))
        durations.update(at, times)
        listed.update(at, [(group, 0) for group in groups])
    tid, opened = facts.ticket.ticket_id, facts.ticket.opened_at
    return Derived(
        steps_of(shares),
        [DurationRow(tid, kind, start, nth, duration_class(value), value, end)
         for (kind, value), nth, start, end in durations.rows()],
        [ListedRow(tid, group, start, nth, opened, _span(start, end), end)
         for (group, _), nth, start, end in listed.rows()])


def _span(start: int, end: int | None) -> int:
    return LONG_SPAN if end is None else min((end - start).bit_length(), LONG_SPAN)


class _Stretches:
    """The maximal stretches of instants during which each item (counted with its multiplicity) is held."""

    def __init__(self) -> None:
        self.open: dict[tuple[Any, int], int] = {}
        self.done: list[tuple[Any, int, int, int | None]] = []

    def update(self, at: int, items: list[Any]) -> None:
        now: dict[Any, int] = defaultdict(int)
        keys = set()
        for item in items:
            keys.add((item, now[item]))
            now[item] += 1
        for key in [key for key in self.open if key not in keys]:
            self.done.append((key[0], key[1], self.open.pop(key), at))
        for key in keys:
            self.open.setdefault(key, at)

    def rows(self) -> list[tuple[Any, int, int, int | None]]:
        return sorted([*self.done, *((item, nth, start, None) for (item, nth), start in self.open.items())],
                      key=lambda row: (str(row[0]), row[1], row[2]))


# --- a customer: satisfied, loyal ------------------------------------------------------------------


class CustomerFacts(NamedTuple):
    customer_id: str
    ratings: list[tuple[int, int, int]]  # (score, rated_at, its ticket's opened_at)
    wins: list[int]


def customer_share(facts: CustomerFacts, t: int) -> Share:
    """Satisfied ("c": a satisfied rating of a ticket opened by `t`), and loyal ("y", `is_loyal`) then."""
    satisfied = [rated for score, rated, opened in facts.ratings if is_satisfied(score) and rated <= t and opened <= t]
    if not satisfied:
        return {}
    return {"c": 1, **({"y": 1} if is_loyal(min(satisfied), [won for won in facts.wins if won <= t]) else {})}


def customer_steps(facts: CustomerFacts) -> Steps:
    instants = sorted({at for _, rated, opened in facts.ratings for at in (rated, opened)} | set(facts.wins))
    return steps_of((at, customer_share(facts, at)) for at in instants)


# --- loading facts, many at once -------------------------------------------------------------------


def ticket_facts(select: Select, ids: list[str] | None) -> list[TicketFacts]:
    """The facts of the tickets `ids` (None: of every ticket), four queries per 400."""
    facts = {row[0]: TicketFacts(TicketRow._make(row)) for row in select_in(
        select, f"SELECT {', '.join(TicketRow._fields)} FROM tickets_tickets WHERE ticket_id IN ({{}})", ids)}
    for table, kind, into in (("tickets_versions", VersionRow, "versions"),
                              ("tickets_resolutions", ResolutionRow, "resolutions"),
                              ("tickets_ratings", RatingRow, "ratings")):
        for row in select_in(select, f"SELECT {', '.join(kind._fields)} FROM {table} WHERE ticket_id IN ({{}}) "
                                      "ORDER BY ticket_id, seq", ids):
            if row[0] in facts:
                getattr(facts[row[0]], into).append(kind._make(row))
    return [facts[tid] for tid in sorted(facts)]


def customers_facts(select: Select, ids: list[str] | None) -> list[CustomerFacts]:
    """The ratings (with their ticket's opening) and wins of the customers `ids` (None: of every customer)."""
    ratings: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    wins: dict[str, list[int]] = defaultdict(list)
    for customer, score, rated, opened in select_in(
            select, "SELECT r.customer_id, r.score, r.rated_at, k.opened_at FROM tickets_ratings r "
                    "JOIN tickets_tickets k ON k.ticket_id = r.ticket_id WHERE r.customer_id IN ({})", ids):
        ratings[customer].append((score, rated, opened))
    for customer, won in select_in(select, "SELECT customer_id, won_at FROM tickets_wins WHERE customer_id IN ({})",
                                    ids):
        wins[customer].append(won)
    return [CustomerFacts(c, sorted(ratings[c]), sorted(wins[c])) for c in sorted(ids or (ratings.keys() | wins.keys()))]


# --- keeping them: after each batch ----------------------------------------------------------------


@dataclass
class Pending:
    tickets: set[str] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)


def pending(rows: Rows) -> Pending:
    found = rows.pending.get("tickets")
    if found is None:
        found = rows.pending["tickets"] = Pending()
    return cast(Pending, found)


def refresh(rows: Rows) -> None:
    """Derive again the tickets and customers this batch touched, replace their rows, and add the difference
    of their steps to the tallies."""
    todo = rows.pending.pop("tickets", None)
    if todo is None:
        return
    days: dict[int, Share] = defaultdict(dict)
    tickets = sorted(todo.tickets)
    if tickets:
        old_steps = stored_steps(rows, STEPS, ["k" + tid for tid in tickets])
        old_rows = {table: _stored_keys(rows, table, tickets) for table in (DURATIONS, LISTED)}
        for facts in ticket_facts(rows.select, tickets):
            derived = derive_ticket(facts)
            unit = "k" + facts.ticket.ticket_id
            replace_steps(rows, STEPS, days, unit, old_steps.get(unit, {}), derived.steps)
            for table, new in ((DURATIONS, derived.durations), (LISTED, derived.listed)):
                _replace_rows(rows, table, old_rows[table].get(facts.ticket.ticket_id, set()), new)
    customers = sorted(todo.customers)
    if customers:
        old_steps = stored_steps(rows, STEPS, ["c" + cid for cid in customers])
        for customer in customers_facts(rows.select, customers):
            unit = "c" + customer.customer_id
            replace_steps(rows, STEPS, days, unit, old_steps.get(unit, {}), customer_steps(customer))
    write_tallies(rows, days, TALLIES)


def _replace_rows(rows: Rows, table: Table, old: set[tuple[Any, ...]], new: list[Any]) -> None:
    keys = {tuple(row[:4]) for row in new}
    for key in sorted(old - keys):
        rows.delete(table, *key)
    for row in new:
        rows.put(table, row)


def _stored_keys(rows: Rows, table: Table, tickets: list[str]) -> dict[str, set[tuple[Any, ...]]]:
    found: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for key in select_in(rows.select, f"SELECT {', '.join(table.key)} FROM {table.name} WHERE ticket_id IN ({{}})",
                          tickets):
        found[key[0]].add(tuple(key))
    return found


# --- every row at once, from the fact tables (a bulk fold's last step) -----------------------------


def derive(select: Select) -> tuple[list[StepRow], list[TallyRow], list[DurationRow], list[ListedRow]]:
    """Every row of the four summed tables from the fact tables alone (`select` reads them): what the
    handlers keep (equal: test_summed_report), for a fold that writes the fact tables set-based."""
    steps: list[StepRow] = []
    durations: list[DurationRow] = []
    listed: list[ListedRow] = []
    for facts in ticket_facts(select, None):
        derived = derive_ticket(facts)
        steps += [StepRow(unit="k" + facts.ticket.ticket_id, at=at, deltas=d) for at, d in derived.steps.items()]
        durations += derived.durations
        listed += derived.listed
    for customer in customers_facts(select, None):
        steps += [StepRow(unit="c" + customer.customer_id, at=at, deltas=d)
                  for at, d in customer_steps(customer).items()]
    tallies: dict[tuple[str, int], Share] = defaultdict(dict)
    for row in steps:
        for key in periods(row["at"] // DAY_MICROS):
            merge(tallies[key], row["deltas"])
    return (steps, [TallyRow(grain=g, period=p, deltas=dict(sorted(d.items())))
                    for (g, p), d in sorted(tallies.items()) if d], durations, listed)
