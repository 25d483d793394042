"""Queries: the funnel read model (as of, flow, compare, filters), pagination, pipelines, OpenAPI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
SALES, ANALYST = auth("sales"), auth("analyst")


def day(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def command(client: TestClient, method: str, path: str, days: float, **body: Any) -> None:
    response = client.request(method, path, json={**body, "occurred_at": day(days)}, headers=SALES)
    assert response.status_code in (200, 201), response.text


@pytest.fixture
def deals(client: TestClient) -> dict[str, str]:
    """A: opened day 0, proposal day 2, won day 5. B: opened day 1, lost day 3.
    C, D, E: opened on days 1, 2, 3 for 100, 200, 300 (C owned by 王伟), still in the first stage."""
    customer = register_customer(client, occurred_at=day(0))
    ids = {name: open_deal(client, customer, occurred_at=day(opened), amount=amount, owner=owner)
           for name, opened, amount, owner in (("A", 0, "1000", "李娜"), ("B", 1, "500", "李娜"),
                                               ("C", 1, "100", "王伟"), ("D", 2, "200", "李娜"),
                                               ("E", 3, "300", "李娜"))}
    command(client, "PUT", f"/deals/{ids['A']}/stage", 2, stage="proposal")
    command(client, "POST", f"/deals/{ids['B']}/lose", 3, reason="预算不足")
    command(client, "POST", f"/deals/{ids['A']}/win", 5)
    project(client.app)  # type: ignore[arg-type]
    return ids


def funnel(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/funnel", params=params, headers=ANALYST)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_funnel_as_of_an_instant_counts_items_reached_won_and_lost(client: TestClient,
                                                                       deals: dict[str, str]) -> None:
    report = funnel(client, as_of=day(10))

    lead, first_contact = report["rows"][0], report["rows"][1]
    assert (lead["stage"], lead["label"], lead["items"], lead["value_cents"], lead["reached"]) == (
        "lead", "潜在客户获取 / Lead", 3, 60000, 5)
    assert (lead["advanced"], lead["lost"], lead["still_open"]) == (1, 1, 3)  # A went on, B lost, C D E open
    assert first_contact["reached"] == 1 and lead["conversion_to_next"] == pytest.approx(0.5)  # not 1 of 5
    assert (report["won"], report["lost"], report["win_rate"], report["won_value_cents"]) == (1, 1, 0.5, 100000)


def test_the_funnel_of_an_earlier_instant_shows_the_deal_before_it_was_won(client: TestClient,
                                                                           deals: dict[str, str]) -> None:
    report = funnel(client, as_of=day(4))

    proposal = next(row for row in report["rows"] if row["stage"] == "proposal")
    assert (proposal["items"], report["won"], report["lost"]) == (1, 0, 1)


def test_stuck_items_are_paginated_longest_first(client: TestClient, deals: dict[str, str]) -> None:
    first = funnel(client, as_of=day(10), stuck_days=5, limit=2)["stuck"]
    rest = funnel(client, as_of=day(10), stuck_days=5, limit=2, offset=2)["stuck"]

    assert [(s["item_id"], s["days_in_stage"]) for s in first["items"]] == [(deals["C"], 9.0), (deals["D"], 8.0)]
    assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (3, 2, 0, 2)
    assert [s["item_id"] for s in rest["items"]] == [deals["E"]] and rest["next_offset"] is None


def test_the_funnel_filters_by_the_owner_at_the_instant(client: TestClient, deals: dict[str, str]) -> None:
    report = funnel(client, as_of=day(10), owner="王伟", stuck_days=5)

    assert (report["rows"][0]["items"], report["rows"][0]["value_cents"], report["stuck"]["total"]) == (1, 10000, 1)


def test_the_flow_counts_entries_advances_and_losses_per_stage(client: TestClient, deals: dict[str, str]) -> None:
    response = client.get("/funnel/flow", params={"start": day(0), "end": day(4)}, headers=ANALYST)

    flow = {row["stage"]: row for row in response.json()["flow"]}
    assert flow["lead"] == {"stage": "lead", "entered": 5, "advanced": 1, "lost": 1}
    assert flow["proposal"] == {"stage": "proposal", "entered": 1, "advanced": 0, "lost": 0}


def test_a_flow_that_ends_before_it_starts_is_refused(client: TestClient) -> None:
    response = client.get("/funnel/flow", params={"start": day(4), "end": day(0)}, headers=ANALYST)

    assert (response.status_code, response.json()["error"]) == (422, "end must come after start")


def test_compare_reports_two_instants_side_by_side(client: TestClient, deals: dict[str, str]) -> None:
    response = client.get("/funnel/compare", params={"first": day(4), "second": day(10)}, headers=ANALYST)

    first, second = response.json()["first"], response.json()["second"]
    assert (first["won"], second["won"], first["as_of"], second["as_of"]) == (
        0, 1, "2026-03-05T09:00:00+00:00", "2026-03-11T09:00:00+00:00")


def test_the_deal_history_is_paginated_oldest_first(client: TestClient, deals: dict[str, str]) -> None:
    first = client.get(f"/deals/{deals['A']}/history", params={"limit": 2}, headers=ANALYST)
    rest = client.get(f"/deals/{deals['A']}/history", params={"limit": 2, "offset": 2}, headers=ANALYST).json()

    body = first.json()
    assert [(e["event"], e["from_stage"], e["to_stage"], e["actor"]) for e in body["items"]] == [
        ("Opened", None, "lead", "李娜"), ("StageChanged", "lead", "proposal", "李娜")]
    assert (body["total"], body["next_offset"], first.headers["etag"]) == (3, 2, '"3"')
    assert [e["event"] for e in rest["items"]] == ["Won"] and rest["next_offset"] is None
    assert rest["items"][0]["occurred_at"] == "2026-03-06T09:00:00+00:00"


def test_a_pipeline_lists_its_stages_with_labels(client: TestClient) -> None:
    response = client.get("/pipelines/service", headers=SALES)

    assert [stage["label"] for stage in response.json()["stages"]] == [
        "问题反馈 / Feedback", "处理中 / In progress", "已解决 / Resolved"]


def test_the_openapi_document_tags_and_summarises_every_operation(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    operations = [operation for methods in paths.values() for operation in methods.values()]
    assert len(operations) == 96  # 57 + 5 of vocabularies + 3 of exchange rates + GET /pipelines + 4 of properties
    #                               and periods + GET /health/live and GET /metrics + 2 of reminders + 9 of the forecast
    #                               + GET /forecast/predict and /forecast/backtest
    #                               + 4 of inspection and win/loss
    #                               + 5 of a campaign's variants
    #                               + 2 of attribution (reports/attribution, reports/cohorts)
    assert all(operation["summary"] and operation["tags"] for operation in operations)
    assert {tag for operation in operations for tag in operation["tags"]} == {
        "health", "customers", "leads", "deals", "campaigns", "tickets", "pipelines", "funnel", "segments", "reports",
        "timeline", "personal data", "vocabularies", "exchange rates", "metrics", "reminders", "forecast",
        "inspection"}


def test_the_funnel_filters_by_the_customers_segment_at_the_instant(client: TestClient,
                                                                    deals: dict[str, str]) -> None:
    potential = funnel(client, as_of=day(10), segment="potential")  # the one customer has open deals
    ordinary = funnel(client, as_of=day(10), segment="ordinary")

    assert potential["rows"][0]["reached"] == 5 and ordinary["rows"][0]["reached"] == 0


def test_an_unknown_segment_is_422(client: TestClient) -> None:
    response = client.get("/funnel", params={"segment": "vip"}, headers=ANALYST)

    assert response.status_code == 422 and "segment" in str(response.json())
