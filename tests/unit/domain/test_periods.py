"""Periods in the business's time zone: boundaries, labels, DST, and parsing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from domain.periods import GRAINS, day_number, day_of_number, parse_period, period_of, periods_between, zone_named

SHANGHAI = zone_named("Asia/Shanghai")
NEW_YORK = zone_named("America/New_York")
UTC = timezone.utc


def test_a_quarter_that_ends_at_midnight_in_shanghai_ends_at_16_utc() -> None:
    q1 = parse_period("2026-Q1", SHANGHAI)
    assert q1.start == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert q1.end == datetime(2026, 3, 31, 16, tzinfo=UTC)


def test_a_win_at_23_30_on_31_march_in_shanghai_is_in_q1_there_and_in_q2_nowhere() -> None:
    won = datetime(2026, 3, 31, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert period_of(won, "quarter", SHANGHAI).label == "2026-Q1"
    assert period_of(won + timedelta(hours=1), "quarter", SHANGHAI).label == "2026-Q2"
    assert period_of(won, "quarter").label == "2026-Q1"  # UTC only when asked


def test_a_day_in_new_york_lasts_23_hours_when_clocks_go_forward() -> None:
    day = parse_period("2026-03-08", NEW_YORK)
    assert day.end - day.start == timedelta(hours=23)


def test_weeks_are_iso_weeks_beginning_on_monday() -> None:
    week = period_of(datetime(2026, 1, 1, 12, tzinfo=UTC), "week", SHANGHAI)
    assert (week.first, week.label) == (date(2025, 12, 29), "2026-W01")


def test_labels_round_trip_and_bad_ones_are_refused_with_a_sentence() -> None:
    for label in ("2026-03-05", "2026-W10", "2026-03", "2026-Q4", "2026"):
        assert parse_period(label, SHANGHAI).label == label
    for bad in ("2026-13", "2026-Q5", "2026-W54", "26-01", "next month"):
        with pytest.raises(ValueError, match="names no period"):
            parse_period(bad)
    for bad in ("Mars/Olympus", "America", "Etc", "x" * 5000):  # directories of the database, a name too long
        with pytest.raises(ValueError, match="not a time zone"):
            zone_named(bad)
    with pytest.raises(ValueError, match="period must be one of"):
        period_of(datetime(2026, 1, 1, tzinfo=UTC), "fortnight")


def test_displayed_ends_carry_their_zone() -> None:
    shown = parse_period("2026-03", SHANGHAI).to_dict()
    assert shown == {"period": "2026-03", "grain": "month", "zone": "Asia/Shanghai",
                     "start": "2026-03-01T00:00:00+08:00", "end": "2026-04-01T00:00:00+08:00"}


def test_periods_between_cover_the_span_in_order() -> None:
    found = periods_between(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), "month", SHANGHAI)
    assert [p.label for p in found] == ["2026-01", "2026-02", "2026-03", "2026-04"]  # 1 April 00:00 UTC is 08:00 there


instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))
zones = st.sampled_from([SHANGHAI, NEW_YORK, zone_named("UTC"), zone_named("Asia/Kolkata"), zone_named("Australia/Lord_Howe")])


@given(instants, st.sampled_from(GRAINS), zones)
def test_every_instant_lies_in_its_period_and_periods_tile_time(instant: datetime, grain: str, zone) -> None:
    period = period_of(instant, grain, zone)
    assert period.contains(instant)
    assert period.next().start == period.end and period.next().previous() == period
    assert parse_period(period.label, zone) == period


@given(instants, zones)
def test_day_numbers_name_the_local_day(instant: datetime, zone) -> None:
    assert day_of_number(day_number(instant, zone)) == instant.astimezone(zone).date()
