"""Readiness: which read models keep the server from being ready, and the lag allowed (CRM_READY_MAX_LAG)."""

from __future__ import annotations

import pytest

from services.projection_runtime.projector import Failure, ProjectionStatus
from services.projection_runtime.readiness import DEFAULT_READY_MAX_LAG, Readiness, ready_max_lag_from_environment
from services.settings import SettingsError


def test_a_read_model_is_in_the_way_when_stopped_or_beyond_the_lag_allowed_not_at_it() -> None:
    failure = Failure("funnel", 7, "lead-1", "Lead.Assigned", "ValueError: no stage", "2026-11-30T05:00:00+00:00")
    readiness = Readiness([ProjectionStatus("funnel", 6, 10, failure), ProjectionStatus("timeline", 0, 100),
                           ProjectionStatus("segments", 90, 100)], max_lag=10)

    assert readiness.reasons == {"funnel": f"stopped: {failure.message()}",
                                 "timeline": "100 events behind the log, more than CRM_READY_MAX_LAG=10"}
    assert not readiness.ready
    assert Readiness([ProjectionStatus("segments", 90, 100)], max_lag=10).ready


@pytest.mark.parametrize(("text", "expected"), [(None, DEFAULT_READY_MAX_LAG), ("", DEFAULT_READY_MAX_LAG),
                                                ("0", 0), (" 250 ", 250)])
def test_the_lag_allowed_is_read_from_the_environment(text: str | None, expected: int) -> None:
    assert ready_max_lag_from_environment({} if text is None else {"CRM_READY_MAX_LAG": text}) == expected


@pytest.mark.parametrize("text", ["-1", "1e4", "many"])
def test_a_lag_allowed_that_is_not_a_whole_number_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(SettingsError, match="CRM_READY_MAX_LAG must be a whole number of events"):
        ready_max_lag_from_environment({"CRM_READY_MAX_LAG": text})
