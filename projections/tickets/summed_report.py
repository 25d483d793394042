"""The plain tickets report as of an instant, from the pre-summed tables: its cost does not grow with history.

Every count of the report as of T (per status, the backlog per priority and assignee, SLA breaches per
priority, CSAT sums per assignee, the service funnel, and the histograms of response and resolution times)
is the sum of the tallies before T's day and the changes of T's day up to T (`ticket_tallies`: ≤ 25 tallies
and one day of rows). The median and p90 take the two times around their rank from the one class of the
histogram that holds them (`tickets_durations`, by kind, class and value), and interpolate as
`projections.funnel.report.percentile` does. The breaching tickets are listed one page at a time: those
unresolved at T (oldest first) from the stretches stabbing T, then the resolved ones walked newest first
(`tickets_listed`), each then computed from its own facts by the reference's rule (`ticket_facts_report.breach_of`).
`ticket_facts_report` derives every figure from every row and is the reference this is held equal to.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
import orjson

from domain.funnel_rules import conversion
from domain.vocabulary import TICKET_PRIORITIES, TICKET_STATUSES
from projections.campaigns.summed_tables import DAY_MICROS, periods_of
from projections.campaigns.unit_steps import Share, merge
from projections.ports import Store, UnsealAll
from projections.tables import micros
from projections.tickets.ticket_facts_report import (HOUR_MICROS, Backlog, BreachPage, Csat, Durations, Satisfaction,
                                              ServiceFunnel, Sla, SlaBreach, TicketReport, breach_of, unsealed)
from projections.tickets.ticket_tallies import LONG_SPAN, ticket_facts


def summed_share(store: Store, t: int) -> Share:
    """Every summed key as of `t` (µs): the tallies before `t`'s day, then that day's changes up to `t`."""
    day = t // DAY_MICROS
    year, month, dekad = periods_of(day)
    total: Share = {}
    for (deltas,) in store.query(
        "SELECT deltas FROM tickets_tallies WHERE (grain = 'y' AND period < ?) "
        "OR (grain = 'm' AND period >= ? AND period < ?) OR (grain = 'k' AND period >= ? AND period < ?) "
        "OR (grain = 'd' AND period >= ? AND period < ?) "
        "UNION ALL SELECT deltas FROM tickets_changes WHERE at >= ? AND at <= ?",
        [year, year, month, month, dekad, dekad, day, day * DAY_MICROS, t],
    ):
        merge(total, orjson.loads(deltas))
    return total


def _split(total: Share) -> dict[str, dict[str, int]]:
    """Figure → name → count (a key without a name: name "")."""
    figures: dict[str, dict[str, int]] = defaultdict(dict)
    for key, value in total.items():
        figure, _, name = key.partition("|")
        figures[figure][name] = value
    return figures


def _durations(store: Store, kind: str, classes: dict[str, int], t: int) -> Durations:
    """Count, median and p90 of the times of that kind as of `t`: the ranks' classes from the histogram, their
    times (as of `t`) in one query, interpolated as `projections.funnel.report.percentile` does."""
    histogram = sorted((int(bin_), count) for bin_, count in classes.items() if count)
    n = sum(count for _, count in histogram)
    if not n:
        return Durations(0, None, None)
    ranks = {q: (math.floor((n - 1) * q), math.ceil((n - 1) * q)) for q in (0.5, 0.9)}
    where = {rank: _class_of(histogram, rank) for pair in ranks.values() for rank in pair}
    bins = sorted({bin_ for bin_, _ in where.values()})
    times: dict[int, list[int]] = defaultdict(list)
    for bin_, value in store.query(
            f"SELECT bin, value FROM tickets_durations WHERE kind = ? AND bin IN ({', '.join('?' * len(bins))}) "
            "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)", [kind, *bins, t, t]):
        times[int(bin_)].append(int(value))
    for values in times.values():
        values.sort()
    nth = {rank: times[bin_][index] for rank, (bin_, index) in where.items()}

    def percentile(q: float) -> float:  # projections.funnel.report.percentile, on the two ranks' times only
        position, (low, high) = (n - 1) * q, ranks[q]
        return nth[low] + (nth[high] - nth[low]) * (position - low)
    return Durations(n, percentile(0.5) / HOUR_MICROS, percentile(0.9) / HOUR_MICROS)


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


def _unresolved(store: Store, t: int, wanted: int) -> tuple[int, list[tuple[str, int, int]]]:
    """How many tickets are listed unresolved at `t`, and the first `wanted` of them (oldest first)."""
    rows, count = [], 0
    params = [value for bound in _BOUNDS for value in (t - (1 << bound), t, t)]
    for ticket_id, nth, opened_at, n in store.query(_UNRESOLVED, [*params, LONG_SPAN, t, t, wanted, LONG_SPAN, t, t]):
        if ticket_id is None:
            count += int(n)  # the long ones
            continue
        rows.append((int(opened_at), ticket_id, int(nth)))
        count += int(n) == 0
    return count, [(tid, nth, 0) for _, tid, nth in sorted(rows)[:wanted]]


def _resolved(store: Store, t: int, offset: int, limit: int) -> list[tuple[str, int, int]]:
    return [(tid, nth, 1) for tid, nth in store.query(
        "SELECT ticket_id, nth FROM tickets_listed WHERE grp = 1 AND opened_at <= ? AND valid_from <= ? "
        "AND (valid_to IS NULL OR valid_to > ?) ORDER BY opened_at DESC, ticket_id, nth LIMIT ? OFFSET ?",
        [t, t, t, limit, offset])]


def _breaching(store: Store, t: int, page: BreachPage, total: int) -> list[SlaBreach]:
    """The page of breaching tickets (subjects sealed), in the reference's order."""
    limit = total if page.limit is None else page.limit
    end = page.offset + limit
    unresolved, first = _unresolved(store, t, end)
    listed = first[page.offset:end]
    if end > unresolved:
        start = max(page.offset - unresolved, 0)
        listed += _resolved(store, t, start, end - unresolved - start)
    facts = {f.ticket.ticket_id: f for f in ticket_facts(store.query, sorted({tid for tid, _, _ in listed}), ratings=False)}
    page_items = []
    for tid, nth, group in listed:
        breaches = [b for k in facts[tid].as_of(t) if (b := breach_of(k, t)) is not None
                    and int(k.resolved_at is not None) == group]
        page_items.append(breaches[nth])
    return page_items


def summed_report(store: Store, unseal_all: UnsealAll, as_of: datetime, page: BreachPage) -> TicketReport:
    """Every figure as of `as_of` from the summed tables, listing the `page` of its breaching tickets."""
    t = micros(as_of)
    figures = _split(summed_share(store, t))
    per_priority = _per(TICKET_PRIORITIES, figures["p"])
    total = figures["b"].get("", 0)
    return TicketReport(
        as_of=as_of,
        backlog=Backlog(_per(TICKET_STATUSES, figures["s"]), sum(per_priority.values()), per_priority,
                        dict(sorted(figures["a"].items()))),
        first_response=_durations(store, "r", figures["r"], t),
        resolution=_durations(store, "z", figures["z"], t),
        sla=Sla(_per(TICKET_PRIORITIES, figures["f"]), _per(TICKET_PRIORITIES, figures["l"]),
                unsealed(_breaching(store, t, page, total), unseal_all), total),
        csat=_csat(figures),
        funnel=_funnel(figures),
    )


def _funnel(figures: dict[str, dict[str, int]]) -> ServiceFunnel:
    single = {figure: figures[figure].get("", 0) for figure in ("o", "x", "u", "v", "c", "y")}
    return ServiceFunnel(feedback=single["o"], resolved=single["x"], surveyed=single["u"], satisfied=single["v"],
                         satisfied_customers=single["c"], loyal=single["y"])
