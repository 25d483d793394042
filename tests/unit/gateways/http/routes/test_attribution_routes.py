"""GET /reports/attribution and /reports/cohorts: credits under a model per campaign, channel or variant, and
CAC/CLV per channel and cohort, as JSON or CSV; 422 with a sentence for a question that has no answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.base import Meta
from services.commands import (LaunchCampaign, OpenDeal, PlanCampaign, RecordCost, RecordResponse, RegisterCustomer,
                               WinDeal)
from tests.unit.gateways.http.conftest import auth, project

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def at(days: float) -> Meta:
    return Meta(occurred_at=START + timedelta(days=days), actor="李娜")


def _history(api: FastAPI) -> None:
    """客户 answered 展会 (day 1) and 邮件 (day 3), and won 1 000 on day 5; 展会 cost 600 on day 0."""
    crm = api.state.crm
    fair = crm.plan_campaign(PlanCampaign("展会", "event", "10000"), at(-1))
    mail = crm.plan_campaign(PlanCampaign("邮件", "email", "10000"), at(-1))
    for campaign in (fair, mail):
        crm.launch_campaign(LaunchCampaign(campaign), at(0))
    crm.record_cost(RecordCost(fair, "600"), at(0))
    customer = crm.register_customer(RegisterCustomer("客户", channel="event"), at(0))
    crm.record_response(RecordResponse(fair, "click", customer_id=customer), at(1))
    crm.record_response(RecordResponse(mail, "reply", customer_id=customer), at(3))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "一期", "1000", owner="李娜"), at(4))), at(5))
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
    assert before.json()["rows"] == [] and before.json()["won_deals"] == 0  # won on 7 March
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
