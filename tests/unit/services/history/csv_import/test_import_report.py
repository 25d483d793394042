"""The report's text: every file, event type and stage; refused rows capped in text, all in JSON."""

from __future__ import annotations

from datetime import datetime, timezone

from services.history.csv_import.import_report import MAX_PRINTED, ImportReport
from services.history.csv_import.import_session import Refused


def test_the_text_caps_refused_rows_and_the_json_keeps_them_all() -> None:
    refused = [Refused("deals.csv", line, "Amount", "bad amount", {}) for line in range(2, 2 + MAX_PRINTED + 5)]
    report = ImportReport("m.toml", {"deals.csv": 60}, {"deals.csv": 3}, {"crm.Deal.Opened": 1}, refused,
                          datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 2, 1, tzinfo=timezone.utc),
                          {"p": {"a": 1}}, dry_run=True)
    text = report.lines()
    assert "  deals.csv: 60 rows read, 3 already imported" in text
    assert "Business time: 2024-01-01T00:00:00Z … 2024-02-01T00:00:00Z" in text
    assert "  deals.csv line 2, column Amount: bad amount" in text
    assert text[-1] == "  … and 5 more (see --json or --rejects)"
    assert len(report.as_dict()["refused"]) == MAX_PRINTED + 5
