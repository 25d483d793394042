"""The tier counts from the tallies (`tier_tallies`) equal the scan of the intervals at every instant where a
customer's tier changes (events and ageing alike) and just before it; no tally is left summing to nothing."""

from __future__ import annotations

from datetime import date, timedelta

from projections.segments import SegmentQueries
from projections.segments.tier_tallies import SUMS, TALLIES, month_of
from projections.tables import from_micros
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from tests.unit.projections.segments import test_queries

US = timedelta(microseconds=1)
live, history = test_queries.live, test_queries.history  # the fixtures: a history of imports, wins, reopenings


def _day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def test_month_of_a_day_is_its_first_day() -> None:
    assert month_of(0) == 0 and month_of(30) == 0 and month_of(31) == 31  # 1970-01-31, 1970-02-01
    assert month_of(_day(date(2024, 2, 29))) == _day(date(2024, 2, 1))
    assert month_of(_day(date(2026, 3, 1))) == _day(date(2026, 3, 1))


def test_tallied_counts_equal_the_scan_at_every_change_and_just_before(
        live: tuple[ReadModelStore, Projector], history: None) -> None:
    store, _ = live
    queries = SegmentQueries(store)
    edges = {edge for row in store.query("SELECT valid_from, valid_to FROM segments_intervals WHERE tier IS NOT NULL",
                                         []) for edge in row if edge is not None}
    assert len(edges) > 10  # purchases ageing out of the window among them
    for edge in sorted(edges):
        for instant in (from_micros(edge) - US, from_micros(edge)):
            assert queries.tier_counts(instant) == queries.tier_counts(instant, scanned=True), instant


def test_no_tally_sums_to_nothing(live: tuple[ReadModelStore, Projector], history: None) -> None:
    store, _ = live
    empty = " AND ".join(f"{name} = 0" for name in SUMS)
    assert store.query(f"SELECT COUNT(*) FROM {TALLIES.name}", [])[0][0] > 0
    assert store.query(f"SELECT COUNT(*) FROM {TALLIES.name} WHERE {empty} AND unconverted IS NULL", []) == [(0,)]
