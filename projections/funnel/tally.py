"""Pre-summed funnel tallies: what each event changes in a pipeline's funnel, summed per month and day.

Every funnel number that accumulates over time (items and value per stage, items per furthest stage,
the stay-class histogram of ended stays, the total won cycle) is a sum of per-event changes in business
time. The read model writes each event's changes (`funnel_changes`) and adds them to its pipeline's
tally of the event's day and month (`funnel_tallies`) in the installation's time zone (the read model's
`zone`: a local day and month, so that period answers can sum them; a change of zone rebuilds the read model,
see `FunnelReadModel.built_with`). The funnel as of T is then the sum of the months before T's month, the
days of T's month before T's day and the changes of T's day up to T, all in the zone the tallies were kept in.
Events that
arrive late (imports) simply add to past tallies: a sum does not care about order. Each tally is kept per
home partition of the items (`part`), so that projectors fed different partitions at once never write
the same row; the closed days, months and years are summed over the partitions (`funnel_sums`,
`refresh_sums`), and a query reads those sums (one row a period, while it holds every change of its
partitions: `TallyRow.n`) — years before T's, months of T's year, days of T's month: ≤ years + 11 + 30 rows.

A change is a dict `{key: delta}` with keys `n|stage` (items in the stage), `v|stage|currency` (their value
in cents of that currency: a tally never adds two currencies; a report converts each sum at its instant's
rate), `f|stage` (items whose furthest stage it is), `l|stage` (lost items whose furthest stage it is),
`s|stage|class` (ended stays of that stay class) and `c` (Σ opened → won of won items, µs).
"""

from __future__ import annotations

from datetime import tzinfo
from functools import lru_cache
from typing import Any, cast
from uuid import UUID

import orjson

from domain.funnel_rules import stage_levels
from domain.periods import UTC, day_number, day_of_number, is_utc, period_of_day
from domain.partitions import partition_of
from domain.pipeline import DEFAULT_PIPELINES, LOST, TERMINAL_STAGES, WON, pipeline_id
from projections.read_model import Rows
from projections.funnel.report import DAY_MICROS, NO_ITEMS, FunnelFacts, StageTotal, stay_class
from projections.funnel.rows import (CHANGES, PIPELINES, SUMS, TALLIES, Change, ChangeRow, HeldPipelineRow, ItemRow,
                                     PipelineRow, SumRow, TallyRow)
from projections.ports import Store
from projections.tables import from_micros, held_json, micros, month_of, year_of



def add(change: Change, key: str, delta: int) -> None:
    if delta:
        change[key] = change.get(key, 0) + delta


def left(change: Change, item: ItemRow, at: int) -> None:
    """An item left its current stage at `at` (its stay ends; it is no longer counted there)."""
    stage = item["stage"]
    add(change, f"n|{stage}", -1)
    add(change, f"v|{stage}|{item['currency']}", -item["amount_cents"])
    if stage not in TERMINAL_STAGES:
        add(change, f"s|{stage}|{stay_class(at - item['stage_entered_at'])}", 1)
    if stage == WON:
        add(change, "c", item["opened_at"] - item["stage_entered_at"])
    if stage == LOST and item["furthest"] is not None:
        add(change, f"l|{item['furthest']}", -1)


def arrived(change: Change, item: ItemRow, levels: dict[str, int]) -> None:
    """An item entered its pipeline or moved into its current stage: counted there, maybe further than
    ever, maybe won."""
    stage, furthest = item["stage"], item["furthest"]
    add(change, f"n|{stage}", 1)
    add(change, f"v|{stage}|{item['currency']}", item["amount_cents"])
    if stage in levels and (furthest is None or levels[stage] > levels[furthest]):
        if furthest is not None:
            add(change, f"f|{furthest}", -1)
        add(change, f"f|{stage}", 1)
        item["furthest"] = stage
    if stage == LOST and furthest is not None:
        add(change, f"l|{furthest}", 1)
    if stage == WON:
        add(change, "c", item["stage_entered_at"] - item["opened_at"])


def revalued(change: Change, item: ItemRow, amount_cents: int) -> None:
    """The item's amount changes (its stage's value with it)."""
    add(change, f"v|{item['stage']}|{item['currency']}", amount_cents - item["amount_cents"])


def levels_of(pipeline: str, rows: Rows) -> dict[str, int]:
    """Stage → level in the pipeline's order so far (won after every open stage).

    Inserting a stage keeps the order of the others, so an item's furthest stage stays its furthest
    under every later order, and the tallies agree with a report that uses the pipeline's latest order.
    """
    row = cast("HeldPipelineRow | None", rows.get(PIPELINES, _row_id(pipeline)))
    if row is None:  # leads and tickets may come before their standard pipeline is defined in the log
        stages = [key for key, _ in DEFAULT_PIPELINES[pipeline][1]]
        row = {"pipeline_id": _row_id(pipeline), "pipeline": pipeline, "stages": stages}
        rows.put(PIPELINES, row)
    if "_levels" not in row:
        row["_levels"] = stage_levels(held_json(row, "stages"))
    return row["_levels"]


def define(pipeline_uuid: UUID, pipeline: str, stages: list[str], rows: Rows) -> None:
    row: PipelineRow = {"pipeline_id": str(pipeline_uuid), "pipeline": pipeline, "stages": stages}
    rows.put(PIPELINES, row)


def insert_stage(pipeline_uuid: UUID, stage: str, position: int, rows: Rows) -> None:
    row = rows.get(PIPELINES, str(pipeline_uuid))
    assert row is not None, f"pipeline {pipeline_uuid} changed before it was defined"
    held_json(row, "stages").insert(position, stage)
    row.pop("_levels", None)
    rows.put(PIPELINES, row)


@lru_cache(maxsize=256)
def _row_id(pipeline: str) -> str:
    return str(pipeline_id(pipeline))


def record(change: Change, item: ItemRow, seq: int, at: int, rows: Rows, zone: tzinfo = UTC) -> None:
    """Store an event's change and add it to the tallies of its day and month in `zone` (and note them for
    `refresh_sums`, when the batch ends)."""
    if not change:
        return
    pipeline = item["pipeline"]
    row: ChangeRow = {"item_id": item["item_id"], "seq": seq, "pipeline": pipeline, "at": at, "deltas": change}
    rows.put(CHANGES, row)
    day, part = local_day(at, zone), partition_of(UUID(item["item_id"]))
    touched = rows.pending.setdefault("funnel", {}).setdefault(pipeline, set())
    for grain, period in (("d", day), ("m", month_of(day))):
        tally = cast("TallyRow | None", rows.get(TALLIES, pipeline, grain, period, part))
        if tally is None:
            tally = {"pipeline": pipeline, "grain": grain, "period": period, "part": part, "n": 0, "deltas": {}}
        merge(held_json(tally, "deltas"), change)
        tally["n"] += 1
        rows.put(TALLIES, tally)
        touched.add((grain, period))


def refresh_sums(rows: Rows) -> None:
    """Sum over the partitions the closed days and months of each pipeline this batch changed or closed
    (`funnel_sums`), so that a query reads one row per period rather than up to 64; and their closed years
    (from their months' sums), so that it reads one row per year rather than 12.

    A pipeline's period is closed once a later one has tallies: days before its last day, months before its
    last month, years before its last month's (the bulk fold, `set_based.SUMS_`, finds the same rows). A batch re-sums the closed periods it
    added to (a late event) and those it closed (between the last summed period and the last one); a
    handful of periods a batch, ≤ 64 rows each. Workers of different partitions that close the same period
    at once write the same row: the later one is done again (on PostgreSQL; once a day). A sum that missed
    a change nonetheless (a worker that closed a period while another added to it) is not read: its `n`
    no longer equals the partitions' (`tallied_facts`); the next batch that changes the period re-sums it."""
    touched: dict[str, set[tuple[str, int]]] = rows.pending.pop("funnel", {})
    for pipeline, periods in sorted(touched.items()):
        [(last_day, last_month, summed_day, summed_month)] = rows.select(  # flushes the batch's tallies first
            f"SELECT {_LAST % ('funnel_tallies', 'd')}, {_LAST % ('funnel_tallies', 'm')}, "
            f"{_LAST % ('funnel_sums', 'd')}, {_LAST % ('funnel_sums', 'm')}", [pipeline] * 4)
        last = {"d": last_day, "m": last_month}
        closed = {key for key in periods if key[1] < last[key[0]]} | {(grain, period) for grain, period in rows.select(
            "SELECT DISTINCT grain, period FROM funnel_tallies WHERE pipeline = ? AND "
            "((grain = 'd' AND period > ? AND period < ?) OR (grain = 'm' AND period > ? AND period < ?))",
            [pipeline, summed_day, last_day, summed_month, last_month])}
        for grain in ("d", "m"):
            chosen = sorted(period for g, period in closed if g == grain)
            for start in range(0, len(chosen), CHUNK):
                _sum_periods(rows, pipeline, grain, chosen[start:start + CHUNK])
        open_year = year_of(last_month)
        for year in sorted({year_of(period) for grain, period in closed if grain == "m"} - {open_year}):
            _sum_year(rows, pipeline, year)


NO_PERIOD = -(2 ** 31)  # before any day number a business time has
_LAST = f"(SELECT COALESCE(MAX(period), {NO_PERIOD}) FROM %s WHERE pipeline = ? AND grain = '%s')"
"""A table's last period of a grain: one probe of its key's index (a MAX over CASE scanned every tally)."""
CHUNK = 400  # periods per IN (…) list


def _sum_periods(rows: Rows, pipeline: str, grain: str, periods: list[int]) -> None:
    sums: dict[int, SumRow] = {period: {"pipeline": pipeline, "grain": grain, "period": period, "n": 0, "deltas": {}}
                               for period in periods}
    for period, n, deltas in rows.select(
        f"SELECT period, n, deltas FROM funnel_tallies WHERE pipeline = ? AND grain = ? "
        f"AND period IN ({', '.join('?' * len(periods))})", [pipeline, grain, *periods]
    ):
        found = sums[period]
        found["n"] += n
        merge(found["deltas"], orjson.loads(deltas))
    for found in sums.values():
        found["deltas"] = dict(sorted(found["deltas"].items()))
        rows.put(SUMS, found)


def _sum_year(rows: Rows, pipeline: str, year: int) -> None:
    """A closed year's sum: its months' sums (just made where the batch changed them), ≤ 12 rows. Its `n` is
    theirs: a month's sum that misses a change makes its year's count differ from the partitions' too."""
    found: SumRow = {"pipeline": pipeline, "grain": "y", "period": year, "n": 0, "deltas": {}}
    for n, deltas in rows.select("SELECT n, deltas FROM funnel_sums WHERE pipeline = ? AND grain = 'm' "
                                 "AND period >= ? AND period < ?", [pipeline, year, year_of(year + 366)]):
        found["n"] += n
        merge(found["deltas"], orjson.loads(deltas))
    found["deltas"] = dict(sorted(found["deltas"].items()))
    rows.put(SUMS, found)


def merge(total: Change, change: Change) -> None:
    """Add `change` into `total`, dropping keys that sum to zero."""
    for key, delta in change.items():
        value = total.get(key, 0) + delta
        if value:
            total[key] = value
        else:
            total.pop(key, None)


def local_day(at: int, zone: tzinfo) -> int:
    """The day number (since 1970-01-01) of the date in `zone` of the instant `at` (µs)."""
    return at // DAY_MICROS if is_utc(zone) else day_number(from_micros(at), zone)


def day_start(day: int, zone: tzinfo) -> int:
    """The instant (µs) the local day `day` begins in `zone`."""
    return day * DAY_MICROS if is_utc(zone) else micros(period_of_day(day_of_number(day), "day", zone).start)


def tallied_facts(store: Store, pipeline: str, stages: list[tuple[str, str]], t: int,
                  zone: tzinfo = UTC, summed: bool = True) -> FunnelFacts:
    """Every accumulated number of the funnel as of `t` (µs), from tallies kept in `zone`; `stuck` is left
    empty. The years before t's year, the months of its year before its month and the days of its month before
    its day are read from their sums over the partitions (`funnel_sums`) where a sum still holds every change
    its partitions hold (its `n` equals theirs: one grouped count over an index, no JSON), else a year from its
    months' sums, a month or day from its partitions' rows; `summed=False` reads the partitions' rows only (the
    reference the tests hold the sums equal to)."""
    day = local_day(t, zone)
    month = month_of(day)
    total: Change = {}
    window = ("pipeline = ? AND ((grain = 'm' AND period < ?) OR (grain = 'd' AND period >= ? AND period < ?))",
              [pipeline, month, month, day])
    if not summed:
        for (deltas,) in store.query(f"SELECT deltas FROM funnel_tallies WHERE {window[0]}", window[1]):
            merge(total, orjson.loads(deltas))
    else:
        counts = {(grain, period): int(n) for grain, period, n in store.query(
            f"SELECT grain, period, SUM(n) FROM funnel_tallies WHERE {window[0]} GROUP BY grain, period", window[1])}
        year = year_of(day)
        sums = {(grain, period): (n, deltas) for grain, period, n, deltas in store.query(
            "SELECT grain, period, n, deltas FROM funnel_sums WHERE pipeline = ? AND ((grain = 'y' AND period < ?) "
            "OR (grain = 'm' AND period >= ? AND period < ?) OR (grain = 'd' AND period >= ? AND period < ?))",
            [pipeline, year, year, month, month, day])}
        for (grain, period), (n, deltas) in sums.items():
            months = [key for key in counts if key[0] == "m" and year_of(key[1]) == period] if grain == "y" else []
            if months and sum(counts[key] for key in months) == n:  # a closed year stands for its months
                merge(total, orjson.loads(deltas))
                for key in months:
                    del counts[key]
        rest = [key for key in counts if key not in sums]  # the months of a year whose sum was not read
        sums |= {(grain, period): (n, deltas) for grain, period, n, deltas in _by_keys(
            store, "SELECT grain, period, n, deltas FROM funnel_sums", pipeline, rest)}
        for key, (n, deltas) in sums.items():
            if counts.get(key) == n:
                merge(total, orjson.loads(deltas))
                del counts[key]
        for (deltas,) in _by_keys(store, "SELECT deltas FROM funnel_tallies", pipeline, sorted(counts)):
            merge(total, orjson.loads(deltas))  # open periods (T's month's last day, say) and stale sums
    for (deltas,) in store.query(
        "SELECT deltas FROM funnel_changes WHERE pipeline = ? AND at >= ? AND at <= ?", [pipeline, day_start(day, zone), t]
    ):
        merge(total, orjson.loads(deltas))
    return _facts(total, stages)


def _by_keys(store: Store, select: str, pipeline: str, keys: list[tuple[str, int]]) -> list[Any]:
    """The rows of `select` (a table keyed by pipeline, grain, period) with these (grain, period) keys."""
    found: list[Any] = []
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        found += store.query(f"{select} WHERE pipeline = ? AND (" + " OR ".join(["(grain = ? AND period = ?)"] * len(chunk))
                             + ")", [pipeline, *(p for key in chunk for p in key)])
    return found


def _facts(total: Change, stages: list[tuple[str, str]]) -> FunnelFacts:
    levels = stage_levels([key for key, _ in stages])
    facts = FunnelFacts(won_cycle_total=total.get("c", 0))
    for key, value in total.items():
        kind, _, rest = key.partition("|")
        if kind == "n":
            facts.in_stage[rest] = StageTotal(value, facts.in_stage.get(rest, NO_ITEMS).values)
        elif kind == "v":
            stage, _, currency = rest.partition("|")
            held = facts.in_stage.get(stage, NO_ITEMS)
            facts.in_stage[stage] = StageTotal(held.items, {**held.values, currency: value})
        elif kind == "f" and rest in levels:
            facts.furthest[levels[rest]] = facts.furthest.get(levels[rest], 0) + value
        elif kind == "l" and rest in levels:
            facts.lost_furthest[levels[rest]] = facts.lost_furthest.get(levels[rest], 0) + value
        elif kind == "s":
            stage, _, stay_class_ = rest.partition("|")
            if stage in levels:
                facts.stays.setdefault(stage, {})[int(stay_class_)] = value
    return facts
