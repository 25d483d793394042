"""GET /forecast and the commands it reads: a deal's close date, probability and category, a stage's defaults,
targets and teams — with If-Match, and 422 with a sentence for what cannot be answered or recorded."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

AT = "2026-02-01T09:00:00+08:00"


def _setup(client: TestClient) -> str:
    customer = register_customer(client, occurred_at=AT)
    return open_deal(client, customer, amount="100000", expected_close="2026-03-31", owner="李娜", occurred_at=AT)


def test_a_deal_moves_in_the_forecast_by_its_own_events(client: TestClient, api: FastAPI) -> None:
    deal = _setup(client)
    moved = client.put(f"/deals/{deal}/expected-close", json={"expected_close": "2026-04-10", "reason": "预算推迟"},
                       headers={**auth("sales"), "If-Match": '"1"'})
    assert moved.status_code == 200 and moved.json()["version"] == 2, moved.text
    stale = client.put(f"/deals/{deal}/probability", json={"probability": 70},
                       headers={**auth("sales"), "If-Match": '"1"'})
    assert stale.status_code == 409
    assert client.put(f"/deals/{deal}/probability", json={"probability": 70}, headers=auth("sales")).status_code == 200
    assert client.put(f"/deals/{deal}/forecast-category", json={"forecast_category": "commit"},
                      headers=auth("sales")).status_code == 200
    assert client.put("/targets/owner/李娜/2026-Q2", json={"amount": "200000"}, headers=auth("admin")).status_code == 200
    assert client.put("/teams/李娜", json={"team": "华东一组"}, headers=auth("admin")).status_code == 200
    project(api)
    answer = client.get("/forecast", params={"by": "owner"}, headers=auth("sales"))
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["rows"]
    assert (row["period"], row["group"], row["commit_cents"], row["weighted_pipeline_cents"], row["target_cents"],
            row["gap_cents"]) == ("2026-Q2", "李娜", 10_000_000, 7_000_000, 20_000_000, 20_000_000)
    before = client.get("/forecast", params={"as_of": "2026-02-02T00:00:00+00:00", "by": "team"}, headers=auth("sales"))
    (then,) = before.json()["rows"]  # as of 2 February: still in Q1, at its stage's default, in no team yet
    assert (then["period"], then["group"], then["pipeline_cents"]) == ("2026-Q1", "", 10_000_000)
    csv = client.get("/forecast", params={"format": "csv", "grain": "month"}, headers=auth("sales"))
    assert csv.status_code == 200 and csv.text.startswith("period,grain,zone")
    assert client.get("/teams", headers=auth("analyst")).json()["teams"][0]["team"] == "华东一组"
    assert client.get("/targets", headers=auth("analyst")).json()["targets"][0]["amount_cents"] == 20_000_000


def test_what_cannot_be_answered_or_recorded_is_refused_with_a_sentence(client: TestClient, api: FastAPI) -> None:
    deal = _setup(client)
    project(api)
    for params, words in (({"period": "2026-W10"}, "month (2026-03) or a quarter"), ({"by": "customer"}, "grouped by"),
                          ({"grain": "week"}, "month or quarter"), ({"period": "2026-Q1", "grain": "month"}, "either")):
        answer = client.get("/forecast", params=params, headers=auth("sales"))
        assert answer.status_code == 422 and words in answer.json()["error"], (params, answer.text)
    for path, body in ((f"/deals/{deal}/forecast-category", {"forecast_category": "closed"}),
                       (f"/deals/{deal}/probability", {"probability": 101}),
                       ("/targets/owner/李娜/2026-W01", {"amount": "1"}),
                       ("/pipelines/sales/stages/nowhere/forecast", {"probability": 5, "forecast_category": "commit"})):
        headers = auth("admin")
        answer = client.put(path, json=body, headers=headers)
        assert answer.status_code == 422, (path, answer.text)
    assert client.put("/targets/owner/李娜/2026-Q1", json={"amount": "1"}, headers=auth("sales")).status_code == 403


def test_a_stage_default_applies_to_its_deals_from_when_it_was_set(client: TestClient, api: FastAPI) -> None:
    _setup(client)
    changed = client.put("/pipelines/sales/stages/lead/forecast", json={"probability": 40,
                                                                        "forecast_category": "best_case"},
                         headers=auth("admin"))  # now: after the deal was opened
    assert changed.status_code == 200, changed.text
    assert client.get("/pipelines/sales", headers=auth("sales")).json()["stage_forecasts"]["lead"] == {
        "probability": 40, "forecast_category": "best_case"}
    project(api)
    before = client.get("/forecast", params={"as_of": "2026-02-15T00:00:00+00:00"}, headers=auth("sales")).json()
    now = client.get("/forecast", headers=auth("sales")).json()
    assert before["rows"][0]["weighted_pipeline_cents"] == 1_400_000  # 14 %: lead is the 1st of 6 open stages
    assert (now["rows"][0]["best_case_cents"], now["rows"][0]["weighted_pipeline_cents"]) == (10_000_000, 4_000_000)
