"""Slippage classification at the edges of months and quarters, the window (A, B], win rate and inactivity: the
rules `domain.pipeline_inspection` says once. A close date is a local date of the business's calendar; the zone
decides which instants fall in a window (a day in Asia/Shanghai begins at 16:00 UTC the day before)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.periods import parse_period
from domain.pipeline_inspection import (PULLED_IN, PUSHED, SET, WITHIN, days_inactive, direction, is_inactive,
                                        periods_moved, require_days, require_inspection_grain, require_window,
                                        win_rate_percent)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("old, new, grain, expected, moved", [
    (date(2026, 3, 31), date(2026, 4, 1), "quarter", PUSHED, 1),  # the last day of Q1 to the first of Q2
    (date(2026, 4, 1), date(2026, 3, 31), "quarter", PULLED_IN, -1),
    (date(2026, 1, 1), date(2026, 3, 31), "quarter", WITHIN, 0),  # the whole quarter, still within it
    (date(2026, 2, 28), date(2026, 3, 1), "month", PUSHED, 1),
    (date(2026, 2, 28), date(2026, 3, 1), "quarter", WITHIN, 0),
    (date(2026, 12, 31), date(2027, 1, 1), "quarter", PUSHED, 1),  # across the year
    (date(2026, 12, 31), date(2027, 1, 1), "month", PUSHED, 1),
    (date(2026, 1, 15), date(2026, 12, 15), "quarter", PUSHED, 3),
    (date(2027, 1, 15), date(2026, 2, 15), "month", PULLED_IN, -11),
    (None, date(2026, 4, 1), "quarter", SET, None),
])
def test_a_moved_close_date_is_classified_by_its_periods(old: date | None, new: date, grain: str, expected: str,
                                                         moved: int | None) -> None:
    assert direction(old, new, grain) == expected
    if old is not None:
        assert periods_moved(old, new, grain) == moved


def test_a_window_in_shanghai_begins_at_1600_utc_the_day_before() -> None:
    week = parse_period("2026-W14", SHANGHAI)  # Monday 30 March to Monday 6 April, Shanghai
    assert week.start == datetime(2026, 3, 29, 16, tzinfo=timezone.utc)
    slip = datetime(2026, 3, 29, 17, tzinfo=timezone.utc)  # 01:00 on Monday in Shanghai, Sunday in UTC
    assert week.start < slip <= week.end  # in (A, B]: the week's changes
    assert not parse_period("2026-W14", ZoneInfo("UTC")).start < slip


def test_a_window_must_run_forwards_and_days_be_counted_up() -> None:
    a = datetime(2026, 4, 1, tzinfo=SHANGHAI)
    require_window(a, a + timedelta(microseconds=1))
    for start, end in ((a, a), (a + timedelta(days=1), a)):
        with pytest.raises(ValueError, match="must come before"):
            require_window(start, end)
    assert require_days(0) == 0
    with pytest.raises(ValueError, match="cannot be negative"):
        require_days(-1)
    with pytest.raises(ValueError, match="month or quarter"):
        require_inspection_grain("week")


def test_win_rate_is_none_without_a_decision_and_rounds_half_even() -> None:
    assert win_rate_percent(0, 0) is None
    assert win_rate_percent(1, 2) == "33.3" and win_rate_percent(2, 1) == "66.7"
    assert win_rate_percent(1, 0) == "100.0" and win_rate_percent(0, 3) == "0.0"
    assert win_rate_percent(1, 7) == "12.5"  # exactly: no rounding
    assert win_rate_percent(1, 15) == "6.2"  # 6.25 → 6.2, half-even


def test_inactive_for_n_days_counts_whole_days_of_24_hours() -> None:
    b = datetime(2026, 4, 20, 9, tzinfo=SHANGHAI)
    assert is_inactive(b - timedelta(days=7), b, 7) and not is_inactive(b - timedelta(days=7) + timedelta(seconds=1),
                                                                         b, 7)
    assert is_inactive(b, b, 0)
    assert days_inactive(b - timedelta(days=6, hours=23), b) == 6
