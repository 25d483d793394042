"""The benchmark harness in smoke mode, in-process: every metric is measured and printed as valid JSON."""

from __future__ import annotations

import io
import json

import pytest

from tests.benchmarks.harness import groups, main


def test_smoke_run_reports_every_metric_with_a_positive_value(postgres_url: str, kafka_bootstrap: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TEST_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("CRM_TEST_KAFKA_BOOTSTRAP", kafka_bootstrap)
    out = io.StringIO()

    succeeded = main(["--smoke"], out) == 0

    *metrics, summary = [json.loads(line) for line in out.getvalue().splitlines()]
    assert succeeded, [metric for metric in metrics if metric["value"] is None]
    assert [m["metric"] for m in metrics] == [name for _, names in groups().values() for name in names]
    for metric in metrics:
        assert set(metric) == {"metric", "value", "unit", "baseline", "baseline_value", "ratio", "target", "met",
                               "details"}
        assert metric["value"] > 0, metric
    assert summary["summary"] is True and summary["smoke"] is True and summary["metrics"] == len(metrics)
    assert 4000 < summary["events"] < 7000
