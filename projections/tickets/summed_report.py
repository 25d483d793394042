"""The plain tickets report as of an instant, from the pre-summed tables: its cost does not grow with history.

Every count of the report as of T (per status, the backlog per priority and assignee, SLA breaches per
priority, CSAT sums per assignee, the service funnel, and the histograms of response and resolution times)
is the sum of the tallies before T's day and the changes of T's day up to T (`ticket_tallies`: ≤ 25 tallies
and one day of rows). The median and p90 take the two times around their rank from the one class of the
histogram that holds them (`tickets_durations`, by kind, class and value), and interpolate as
`projections.funnel.report.percentile` does. The breaching tickets are listed one page at a time: those
unresolved at T (oldest first) from the stretches stabbing T, then the resolved ones walked newest first
(`tickets_listed`), each then computed by the reference's own query and rule restricted to the page's
tickets (`ticket_facts_report.tickets_as_of`, `breach_of`).
`ticket_facts_report` derives every figure from every row and is the reference this is held equal to.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import orjson

from domain.funnel_rules import conversion
from domain.vocabulary import TICKET_PRIORITIES, TICKET_STATUSES
from projections.campaigns.summed_tables import BEFORE_DAY, DAY_MICROS, before_day
from projections.campaigns.unit_steps import Share
from projections.ports import Store, UnsealAll
from projections.tables import micros
from projections.tickets.ticket_facts_report import (HOUR_MICROS, Backlog, BreachPage, Csat, Durations, Satisfaction,
                                              ServiceFunnel, Sla, SlaBreach, TicketAsOf, TicketReport, breach_of,
                                              tickets_as_of, unsealed)
from projections.tickets.ticket_tallies import LONG_SPAN


def summed_share(store: Store, t: int) -> Share:
    """Every summed key as of `t` (µs): the tallies before `t`'s day, then that day's changes up to `t`
    (added without dropping zeros key by key, then dropped once: ≈ 1,500 keys on the 1M history)."""
    day = t // DAY_MICROS
    total: Share = {}
    for (deltas,) in store.query(
        f"SELECT deltas FROM tickets_tallies WHERE {BEFORE_DAY} "
        "UNION ALL SELECT deltas FROM tickets_changes WHERE at >= ? AND at <= ?",
        [*before_day(day), day * DAY_MICROS, t],
    ):
        for key, delta in orjson.loads(deltas).items():
            total[key] = total.get(key, 0) + delta
    return {key: value for key, value in total.items() if value}


def _split(total: Share) -> dict[str, dict[str, int]]:
    """Figure → name → count (a key without a name: name "")."""
    figures: dict[str, dict[str, int]] = defaultdict(dict)
    for key, value in total.items():
        figure, _, name = key.partition("|")
        figures[figure][name] = value
    return figures


class _Ranks(NamedTuple):
    """The times of one kind as of T: how many, the classes holding the ranks a median and a p90 need."""

    count: int
    ranks: dict[float, tuple[int, int]]  # q → the two ranks (0-based) it interpolates between
    where: dict[int, tuple[int, int]]  # rank → (class, rank within it)


def _ranks(classes: dict[str, int]) -> _Ranks:
    histogram = sorted((int(bin_), count) for bin_, count in classes.items() if count)
    n = sum(count for _, count in histogram)
    ranks = {q: (math.floor((n - 1) * q), math.ceil((n - 1) * q)) for q in (0.5, 0.9)} if n else {}
    return _Ranks(n, ranks, {rank: _class_of(histogram, rank) for pair in ranks.values() for rank in pair})


def _times(store: Store, figures: dict[str, dict[str, int]], t: int) -> tuple[Durations, Durations]:
    """Count, median and p90 of the response ("r") and resolution ("z") times as of `t`: the ranks' classes
    from the histograms, their times as of `t` in one query, interpolated as `projections.funnel.report.percentile`
    does (the same arithmetic on the same two times: the same float)."""
    ranks = {kind: _ranks(figures[kind]) for kind in ("r", "z")}
    wanted = {kind: sorted({bin_ for bin_, _ in r.where.values()}) for kind, r in ranks.items() if r.count}
    times: dict[tuple[str, int], list[int]] = defaultdict(list)
    if wanted:
        which = " OR ".join(f"(kind = ? AND bin IN ({', '.join('?' * len(bins))}))" for bins in wanted.values())
        for kind, bin_, value in store.query(
                f"SELECT kind, bin, value FROM tickets_durations WHERE ({which}) AND valid_from <= ? "
                "AND (valid_to IS NULL OR valid_to > ?)", [*(v for k, bins in wanted.items() for v in (k, *bins)), t, t]):
            times[kind, int(bin_)].append(int(value))
    for values in times.values():
        values.sort()
    return _durations(ranks["r"], "r", times), _durations(ranks["z"], "z", times)


def _durations(ranks: _Ranks, kind: str, times: dict[tuple[str, int], list[int]]) -> Durations:
    if not ranks.count:
        return Durations(0, None, None)
    nth = {rank: times[kind, bin_][index] for rank, (bin_, index) in ranks.where.items()}

    def percentile(q: float) -> float:
        position, (low, high) = (ranks.count - 1) * q, ranks.ranks[q]
        return nth[low] + (nth[high] - nth[low]) * (position - low)
    return Durations(ranks.count, percentile(0.5) / HOUR_MICROS, percentile(0.9) / HOUR_MICROS)


def _class_of(histogram: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The class holding the rank-th (0-based) time, and its rank within the class."""
    for bin_, count in histogram:
        if rank < count:
            return bin_, rank
        rank -= count
    raise AssertionError("the histogram holds fewer times than its sum")


def _satisfaction(count: int, score: int, satisfied: int) -> Satisfaction:
    return Satisfaction(count, score / count if count else None, conversion(count, satisfied))


def _csat(figures: dict[str, dict[str, int]]) -> Csat:
    n, m, q = figures["n"], figures["m"], figures["q"]
    per_assignee = {who: _satisfaction(n[who], m.get(who, 0), q.get(who, 0)) for who in sorted(n)}
    return Csat(_satisfaction(sum(n.values()), sum(m.values()), sum(q.values())), per_assignee)


def _per(names: tuple[str, ...], counts: dict[str, int]) -> dict[str, int]:
    return {**dict.fromkeys(names, 0), **counts}


_BOUNDS = tuple(range(20, LONG_SPAN, 2))  # each arm: spans in (bound − 2, bound]; the first: all up to 2^20 µs
_WINDOWS = " UNION ALL ".join(
    "SELECT ticket_id, nth, opened_at FROM tickets_listed WHERE grp = 0 "
    f"AND span IN ({', '.join(map(str, range(bound + 1) if bound == _BOUNDS[0] else (bound - 1, bound)))}) "
    "AND valid_from > ? AND valid_from <= ? AND valid_to > ?" for bound in _BOUNDS)
"""The unresolved stretches stabbing T, one index range per two length classes (16 arms): a stretch shorter
than 2^bound stabbing T began after T − 2^bound, so each arm reads at most about four times the stretches
it finds."""
_LONG = "FROM tickets_listed WHERE grp = 0 AND span = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
_UNRESOLVED = (f"SELECT ticket_id, nth, opened_at, 0 AS n FROM ({_WINDOWS}) AS w UNION ALL "
               f"SELECT * FROM (SELECT ticket_id, nth, opened_at, -1 AS n {_LONG} "
               "ORDER BY opened_at, ticket_id, nth LIMIT ?) AS l UNION ALL "
               f"SELECT NULL, NULL, NULL, COUNT(*) {_LONG}")
"""The short unresolved stretches stabbing T (n 0), the first long or still open ones (n −1), and how many
long ones there are (the row with no ticket): one round trip."""


_RESOLVED = ("SELECT ticket_id, nth, opened_at, 1 AS n FROM tickets_listed WHERE grp = 1 AND opened_at <= ? "
             "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) ORDER BY opened_at DESC, ticket_id, nth "
             "LIMIT ? OFFSET ?")
"""The tickets listed resolved at T, newest first: the index (grp, opened_at) walked backwards from T."""


def _listed(store: Store, t: int, offset: int, limit: int) -> list[tuple[str, int, int]]:
    """The page's (ticket, nth, group): unresolved at `t` oldest first, then resolved newest first. The first
    page asks for both at once (the resolved part starts at 0 whatever the unresolved count); a later one
    asks for the resolved part once it knows how many unresolved come first."""
    end = offset + limit
    params = [*(v for bound in _BOUNDS for v in (t - (1 << bound), t, t)), LONG_SPAN, t, t, end, LONG_SPAN, t, t]
    sql = _UNRESOLVED if offset else f"{_UNRESOLVED} UNION ALL SELECT * FROM ({_RESOLVED}) AS r"
    unresolved, count, resolved = [], 0, []
    for ticket_id, nth, opened_at, n in store.query(sql, params if offset else [*params, t, t, t, limit, 0]):
        if ticket_id is None:
            count += int(n)  # how many long ones
        elif int(n) == 1:
            resolved.append((ticket_id, int(nth), 1))
        else:
            unresolved.append((int(opened_at), ticket_id, int(nth)))
            count += int(n) == 0
    listed = [(tid, nth, 0) for _, tid, nth in sorted(unresolved)[offset:end]]
    if end > count:
        start = max(offset - count, 0)
        if offset:
            resolved = [(tid, int(nth), 1) for tid, nth, _, _ in store.query(_RESOLVED, [t, t, t, end - count - start,
                                                                                       start])]
        listed += resolved[:end - count - start]
    return listed


def _breaching(store: Store, t: int, page: BreachPage, total: int) -> list[SlaBreach]:
    """The page of breaching tickets (subjects sealed), in the reference's order."""
    listed = _listed(store, t, page.offset, total if page.limit is None else page.limit)
    standing: dict[str, list[TicketAsOf]] = defaultdict(list)  # the reference's own query, for the page's tickets
    for k in tickets_as_of(store, t, sorted({tid for tid, _, _ in listed})) if listed else []:
        standing[k.ticket_id].append(k)
    page_items = []
    for tid, nth, group in listed:
        breaches = [b for k in standing[tid] if (b := breach_of(k, t)) is not None
                    and int(k.resolved_at is not None) == group]
        page_items.append(breaches[nth])
    return page_items


def summed_report(store: Store, unseal_all: UnsealAll, as_of: datetime, page: BreachPage) -> TicketReport:
    """Every figure as of `as_of` from the summed tables, listing the `page` of its breaching tickets; its
    statements in one snapshot (each indexes into another's answer: a batch between them broke the report)."""
    t = micros(as_of)
    with store.snapshot():
        figures = _split(summed_share(store, t))
        total = figures["b"].get("", 0)
        first_response, resolution = _times(store, figures, t)
        breaching = _breaching(store, t, page, total)
    per_priority = _per(TICKET_PRIORITIES, figures["p"])
    return TicketReport(
        as_of=as_of,
        backlog=Backlog(_per(TICKET_STATUSES, figures["s"]), sum(per_priority.values()), per_priority,
                        dict(sorted(figures["a"].items()))),
        first_response=first_response,
        resolution=resolution,
        sla=Sla(_per(TICKET_PRIORITIES, figures["f"]), _per(TICKET_PRIORITIES, figures["l"]),
                unsealed(breaching, unseal_all), total),
        csat=_csat(figures),
        funnel=_funnel(figures),
    )


def _funnel(figures: dict[str, dict[str, int]]) -> ServiceFunnel:
    single = {figure: figures[figure].get("", 0) for figure in ("o", "x", "u", "v", "c", "y")}
    return ServiceFunnel(feedback=single["o"], resolved=single["x"], surveyed=single["u"], satisfied=single["v"],
                         satisfied_customers=single["c"], loyal=single["y"])
