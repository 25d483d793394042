"""GET /reports/attribution and /reports/cohorts: credits under a model per campaign, channel or variant, and
CAC/CLV per channel and cohort, as JSON or CSV; 422 with a sentence for a question that has no answer."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.attribution_histories import two_touch_journey
from tests.unit.gateways.http.conftest import auth, project


def _history(api: FastAPI) -> None:
    """`attribution_histories.two_touch_journey`: 客户 won 1 000 on 6 March 2026 after 展会 and 邮件."""
    two_touch_journey(api.state.crm)
    project(api)


def test_credits_by_model_and_axis_as_json_and_csv(client: TestClient, api: FastAPI) -> None:
    _history(api)
    answer = client.get("/reports/attribution", params={"model": "u_shaped", "by": "channel"}, headers=auth("sales"))
    assert answer.status_code == 200, answer.text
    assert {row["channel"]: row["credited_cents"] for row in answer.json()["rows"]} == {"event": 50_000,
                                                                                         "email": 50_000}
    first = client.get("/reports/attribution", params={"model": "first_touch"}, headers=auth("analyst")).json()
    assert [(row["name"], row["credited_cents"]) for row in first["rows"]] == [("展会", 100_000)]
    before = client.get("/reports/attribution", params={"as_of": "2026-03-06T00:00:00+00:00"}, headers=auth("sales"))
    assert before.json()["rows"] == [] and before.json()["won_deals"] == 0  # won on 6 March, 09:00 UTC
    csv = client.get("/reports/attribution", params={"model": "time_decay", "half_life_days": "2", "format": "csv",
                                                     "by": "variant"}, headers=auth("sales"))
    assert csv.status_code == 200 and csv.text.startswith("campaign_id,name,channel,variant,credited_cents")
    assert "邮件" in csv.text


def test_cohorts_in_the_zone_asked(client: TestClient, api: FastAPI) -> None:
    _history(api)
    answer = client.get("/reports/cohorts", params={"tz": "Asia/Shanghai", "grain": "quarter"}, headers=auth("sales"))
    assert answer.status_code == 200, answer.text
    rows = {(row["channel"], row["period"]): row for row in answer.json()["cohorts"]}
    assert (rows[("event", "2026-Q1")]["cac_cents"], rows[("event", "2026-Q1")]["clv_cents"]) == (60_000, 100_000)
    assert answer.json()["zone"] == "Asia/Shanghai"
    csv = client.get("/reports/cohorts", params={"format": "csv"}, headers=auth("sales"))
    assert csv.status_code == 200 and csv.text.startswith("channel,period,grain,zone")


def test_questions_without_an_answer_are_422_with_a_sentence(client: TestClient) -> None:
    for path, params, words in (("/reports/attribution", {"model": "position"}, "must be one of"),
                                ("/reports/attribution", {"by": "region"}, "attribution is by"),
                                ("/reports/attribution", {"half_life_days": "0"}, "positive number of days"),
                                ("/reports/attribution", {"half_life_days": "-3"}, "positive number of days"),
                                ("/reports/cohorts", {"grain": "week"}, "month or quarter"),
                                ("/reports/cohorts", {"tz": "Mars/Olympus"}, "not a time zone")):
        answer = client.get(path, params=params, headers=auth("sales"))
        assert answer.status_code == 422 and words in answer.json()["error"], (path, params, answer.text)
