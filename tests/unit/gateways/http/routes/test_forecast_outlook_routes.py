"""GET /forecast/predict and GET /forecast/backtest: the history-based forecast's JSON (the dashboard's chart
data) and CSV tables, in the zone asked, and 422 with a sentence for what cannot be answered."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.forecast_history import build
from tests.unit.gateways.http.conftest import auth, project


@pytest.fixture
def history(client: TestClient, api: FastAPI) -> None:
    build(api.state.crm, date(2023, 1, 1), 30)
    project(api)


def test_a_backtest_gives_each_method_s_forecast_band_actual_and_errors(client: TestClient, history: None) -> None:
    answer = client.get("/forecast/backtest", params={"as_of": "2025-03-01T00:00:00+08:00", "periods": 3,
                                                      "actual_as_of": "2025-06-01T00:00:00+08:00",
                                                      "tz": "Asia/Shanghai"}, headers=auth("sales"))

    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [a["period"] for a in found["actuals"]] == ["2025-03", "2025-04", "2025-05"]
    assert all(a["complete"] for a in found["actuals"])
    seasonal = next(m for m in found["methods"] if m["method"] == "seasonal")
    assert seasonal["available"] and seasonal["errors"]["periods_compared"] == 3
    assert {"forecast_cents", "lower_cents", "upper_cents", "actual_cents", "error_cents"} <= set(seasonal["periods"][0])
    assert "x-read-model-position" in answer.headers  # freshness, as every read-model GET


def test_predict_answers_csv_and_only_the_methods_asked(client: TestClient, history: None) -> None:
    json = client.get("/forecast/predict", params=[("as_of", "2025-06-01T00:00:00+08:00"), ("method", "naive"),
                                                   ("method", "trend"), ("grain", "quarter")], headers=auth("analyst"))
    csv = client.get("/forecast/predict", params={"as_of": "2025-06-01T00:00:00+08:00", "format": "csv"},
                     headers=auth("analyst"))

    assert json.status_code == 200, json.text
    assert [m["method"] for m in json.json()["methods"]] == ["trend", "naive"]
    assert json.json()["horizon"][0]["period"] == "2025-Q3"
    assert csv.status_code == 200 and csv.text.startswith("method,period,start,end,forecast_cents,lower_cents")


@pytest.mark.parametrize(("path", "params", "words"), [
    ("/forecast/predict", {"periods": 0}, "from 1 to 24"),
    ("/forecast/predict", {"periods": "three"}, "periods"),
    ("/forecast/predict", {"method": "prophet"}, "unknown forecast method"),
    ("/forecast/predict", {"grain": "week"}, "month or quarter"),
    ("/forecast/predict", {"level": 99.5}, "level"),
    ("/forecast/predict", {"tz": "Mars/Olympus"}, "not a time zone"),
    ("/forecast/backtest", {}, "as_of"),
    ("/forecast/backtest", {"as_of": "2025-06-01T00:00:00+08:00", "actual_as_of": "2025-05-01T00:00:00+08:00"},
     "must be after as_of"),
])
def test_what_cannot_be_answered_is_422_with_a_sentence(client: TestClient, api: FastAPI, path: str, params: dict,
                                                        words: str) -> None:
    project(api)
    answer = client.get(path, params=params, headers=auth("sales"))

    assert answer.status_code == 422 and words in answer.text, answer.text
