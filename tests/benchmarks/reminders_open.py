"""Reminders open as of T (`ReminderQueries.open_at`, `GET /reminders?as_of=`) at instants near 10 % and near 100 %
of a two-year history of reminders, against the same answer from the query before span classes, which read
every reminder emitted by T (`Scanned`), at the same instants.

The read model is filled with synthetic rows (no log: the reminders of 1M demo events would need the process to
run over two years of clock): items entering a stage at random instants, staying an hour to 10 days (those whose
stay outlasts the history still there), each reminded one to three days after entering if still there then. Its rows are those the
handlers write (`span` by `projections.tables.span_class`), the customers are left out (the query LEFT JOINs)."""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from projections.funnel import percentile
from projections.reminders import ReminderQueries, RemindersReadModel
from projections.reminders.queries import _OPEN
from projections.reminders.rows import ENTRIES, ITEMS, REMINDERS, STAYING
from projections.tables import from_micros, micros, span_class
from services.application import CrmApplication
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.harness import Bench, Metric, log, ratio

START = datetime(2024, 12, 1, tzinfo=timezone.utc)
DAYS = 730
END = micros(START + timedelta(days=DAYS))
ITEMS_AT_FULL_SCALE = 200_000
FLAT = 1.25
QUERIES, WARM_UP = 30, 3


def _fill(store: ReadModelStore, count: int, rng: random.Random, analyze: bool = True) -> int:
    items, entries, reminders = [], [], []
    for n in range(count):
        item = str(UUID(int=rng.getrandbits(128)))
        entered = micros(START) + int(rng.uniform(0, DAYS) * 86_400e6)
        left = entered + int(rng.uniform(1 / 24, 10) * 86_400e6)
        left = STAYING if left > END else left  # still there at the history's end
        items.append((item, "deal", "sales", "proposal", 1, entered, entered, 1, "", "李娜", "", "", "", ""))
        entries.append((item, 1, "sales", "proposal", entered, left))
        emitted = entered + int(rng.uniform(1, 3) * 86_400e6)
        if emitted < left:
            reminders.append((str(UUID(int=n + 1)), item, 1, "1d", emitted, emitted, "李娜", left,
                              span_class(emitted, left)))
    with store.transaction() as cursor:
        for table, rows in ((ITEMS, items), (ENTRIES, entries), (REMINDERS, reminders)):
            for start in range(0, len(rows), 5_000):
                cursor.upsert(table, rows[start:start + 5_000])
    if analyze:
        with store.transaction() as cursor:
            cursor.execute("ANALYZE", [])  # as autovacuum would soon after such a load
    return len(reminders)


class Scanned(ReminderQueries):
    """`open_at` with the query before span classes: every reminder emitted by T, joined to its entry."""

    def _open_rows(self, t: int, owner: str | None) -> list[Any]:
        sql = _OPEN.replace("r.left_at > ? AND ", "r.emitted_at <= ?")
        return self.store.query(sql + " ORDER BY r.due_at, r.reminder_id", [t, t, t])


def _series(ask, at: datetime, rng: random.Random) -> list[float]:
    found = []
    for n in range(WARM_UP + QUERIES):
        instant = at - timedelta(days=rng.uniform(0, DAYS * 0.01))
        started = time.perf_counter()
        ask(instant)
        if n >= WARM_UP:
            found.append((time.perf_counter() - started) * 1000)
    return found


def measure(bench: Bench) -> list[Metric]:
    app = CrmApplication(database_from_url(bench.database()))
    store = ReadModelStore(app.database)
    try:
        Projector(app, store, [RemindersReadModel()]).catch_up()  # its tables
        count = max(2_000, round(ITEMS_AT_FULL_SCALE * min(bench.plan.scale, 1.0)))
        log(f"reminders open at T: {count:,} items over {DAYS} days")
        reminded = _fill(store, count, random.Random(15), app.database.kind == "postgresql")
        queries = ReminderQueries(store, app.keys.unseal_all_marks)
        found: dict[str, dict[str, object]] = {}
        for fraction in (0.1, 1.0):
            at = START + timedelta(days=DAYS * fraction)
            indexed = _series(lambda t: queries.open_at(t), at, random.Random(1))
            scanned = _series(lambda t: Scanned(store, app.keys.unseal_all_marks).open_at(t), at, random.Random(1))
            found[f"{fraction:.0%}"] = {"open_at_p95_ms": round(percentile(indexed, 0.95) or 0, 1),
                                        "scan_p95_ms": round(percentile(scanned, 0.95) or 0, 1),
                                        "open": len(queries.open_at(from_micros(micros(at)))),
                                        "load_average": round(os.getloadavg()[0], 1)}
    finally:
        store.close()
        app.close()
    low, high = found["10%"], found["100%"]
    growth = ratio(high["open_at_p95_ms"], low["open_at_p95_ms"])
    return [Metric("asof_reminders_open_flat", high["open_at_p95_ms"], "ms (p95)",
                   "the query before span classes (every reminder emitted by T), same instants",
                   high["scan_p95_ms"], ratio(high["scan_p95_ms"], high["open_at_p95_ms"]),
                   f"flat: ≤ {FLAT}× its p95 at 10 % of the history", growth is not None and growth <= FLAT,
                   {"items": count, "reminders": reminded, "p95_100_over_10": growth,
                    "scan_p95_100_over_10": ratio(high["scan_p95_ms"], low["scan_p95_ms"]), "by_fraction": found})]
