"""The session's helpers: a bare date on the last event's day, and the external-id adapter of part *extids*."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from services.history.csv_import.csv_rows import Instant
from services.history.csv_import.import_session import at_or_after

NEW_YORK = ZoneInfo("America/New_York")


def test_a_bare_date_on_the_day_of_the_last_event_is_that_instant_and_another_day_stays() -> None:
    last = datetime(2024, 2, 1, 20, tzinfo=timezone.utc)  # 15:00 in New York
    same_day = Instant(datetime(2024, 2, 1, tzinfo=NEW_YORK), date_only=True)
    day_before = Instant(datetime(2024, 1, 31, tzinfo=NEW_YORK), date_only=True)
    with_time = Instant(datetime(2024, 2, 1, 9, tzinfo=NEW_YORK), date_only=False)
    assert at_or_after(same_day, last, NEW_YORK) == last
    assert at_or_after(day_before, last, NEW_YORK) == day_before.at  # the domain then refuses it
    assert at_or_after(with_time, last, NEW_YORK) == with_time.at
