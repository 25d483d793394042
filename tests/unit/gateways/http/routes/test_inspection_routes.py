"""GET /inspection/slippage | changes | inactive and GET /winloss: the window (from, to] and the periods in the zone
`?tz=`, items by title and customer, CSV tables, and 422 with a sentence for a window that does not run forwards,
negative days, an unknown grain or grouping."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

AT = "2026-03-01T09:00:00+08:00"
SLIP = "2026-04-01T01:00:00+08:00"  # 31 March 17:00 UTC
WEEK = {"from": "2026-04-01T00:00:00+08:00", "to": "2026-04-08T00:00:00+08:00"}


def _history(client: TestClient) -> tuple[str, str]:
    customer = register_customer(client, occurred_at=AT, company="甲公司")
    slipping = open_deal(client, customer, title="一期", amount="100000", expected_close="2026-03-31", owner="李娜",
                         occurred_at=AT)
    lost = open_deal(client, customer, title="二期", amount="5000", owner="王伟", occurred_at=AT)
    moved = client.put(f"/deals/{slipping}/expected-close", headers=auth("sales"),
                       json={"expected_close": "2026-04-01", "reason": "客户预算推迟", "occurred_at": SLIP})
    assert moved.status_code == 200, moved.text
    refused = client.post(f"/deals/{lost}/lose", headers=auth("sales"),
                          json={"reason": "价格", "competitor": "竞品甲", "occurred_at": "2026-04-02T09:00:00+08:00"})
    assert refused.status_code == 200, refused.text
    return slipping, lost


def test_the_week_in_shanghai_holds_the_slip_and_the_loss(client: TestClient, api: FastAPI) -> None:
    slipping, lost = _history(client)
    project(api)
    answer = client.get("/inspection/slippage", params={**WEEK, "tz": "Asia/Shanghai"}, headers=auth("sales"))
    assert answer.status_code == 200, answer.text
    (deal,) = answer.json()["deals"]
    assert (deal["deal_id"], deal["deal"], deal["customer"], deal["direction"], deal["old_period"],
            deal["new_period"], deal["changes"][0]["reason"]) == (slipping, "一期", "甲公司", "pushed", "2026-Q1",
                                                                  "2026-Q2", "客户预算推迟")
    utc = client.get("/inspection/slippage", params={"from": "2026-04-01T00:00:00Z", "to": "2026-04-08T00:00:00Z",
                                                     "tz": "UTC"}, headers=auth("sales"))
    assert utc.json()["deals"] == []  # its days begin 8 hours later: the slip was before
    stages = client.get("/inspection/changes", params=WEEK, headers=auth("analyst")).json()["stages"]
    assert [(s["deal"], s["to_stage"], s["moves"][0]["reason"]) for s in stages] == [("二期", "lost", "价格")]
    winloss = client.get("/winloss", params={"by": "competitor", "as_of": WEEK["to"]}, headers=auth("sales")).json()
    assert winloss["totals"]["lost"] == 1 and winloss["groups"][0]["group"] == "竞品甲"
    quiet = client.get("/inspection/inactive", params={"as_of": "2026-04-20T00:00:00+08:00", "days": 7},
                       headers=auth("sales")).json()
    assert [(d["deal"], d["days_inactive"]) for d in quiet["deals"]] == [("一期", 18)]
    csv = client.get("/inspection/slippage", params={**WEEK, "format": "csv", "table": "changes"},
                     headers=auth("sales"))
    assert csv.status_code == 200 and csv.text.startswith("deal,customer,at,old_close") and "客户预算推迟" in csv.text
    assert client.get("/winloss", params={"format": "csv", "table": "reasons"},
                      headers=auth("sales")).text.startswith("group,reason,deals,cents")


def test_what_cannot_be_answered_is_refused_with_a_sentence(client: TestClient, api: FastAPI) -> None:
    _history(client)
    project(api)
    for path, params, words in (
            ("/inspection/slippage", {"from": WEEK["to"], "to": WEEK["from"]}, "must come before"),
            ("/inspection/changes", {"from": WEEK["to"], "to": WEEK["to"]}, "must come before"),
            ("/inspection/slippage", {**WEEK, "grain": "week"}, "month or quarter"),
            ("/inspection/inactive", {"days": -1}, "cannot be negative"),
            ("/winloss", {"by": "colour"}, "grouped by"), ("/winloss", {"period": "2026-W10"}, "month or quarter"),
            ("/winloss", {"period": "2026-Q1", "grain": "month"}, "either"), ("/winloss", {"tz": "Mars/Base"}, "tz")):
        answer = client.get(path, params=params, headers=auth("sales"))
        assert answer.status_code == 422 and words in answer.json()["error"], (path, params, answer.text)
    assert client.get("/winloss", headers=auth("service")).status_code == 403  # the sales managers' view


def test_winloss_json_pages_the_deals_and_keeps_the_totals_whole(client: TestClient, api: FastAPI) -> None:
    """At 1M events the decided deals are tens of thousands: JSON gives them a page at a time (`limit`, `offset`,
    `next_offset`), the totals and groups over all of them; CSV, an export, every deal."""
    customer = register_customer(client, occurred_at=AT, company="甲公司")
    for n in range(3):
        deal = open_deal(client, customer, title=f"单{n}", amount="1000", owner="李娜", occurred_at=AT)
        assert client.post(f"/deals/{deal}/lose", headers=auth("sales"),
                           json={"reason": "价格", "occurred_at": "2026-03-02T09:00:00+08:00"}).status_code == 200
    project(api)
    first = client.get("/winloss", params={"limit": 2}, headers=auth("sales")).json()
    assert first["totals"]["lost"] == 3 and len(first["deals"]["items"]) == 2
    assert (first["deals"]["total"], first["deals"]["next_offset"]) == (3, 2)
    rest = client.get("/winloss", params={"limit": 2, "offset": 2}, headers=auth("sales")).json()["deals"]
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    assert {d["deal_id"] for d in first["deals"]["items"] + rest["items"]} == {
        d["deal_id"] for d in client.get("/winloss", headers=auth("sales")).json()["deals"]["items"]}
    csv = client.get("/winloss", params={"format": "csv", "table": "deals", "limit": 1}, headers=auth("sales")).text
    assert len(csv.strip().splitlines()) == 1 + 3
    assert client.get("/winloss", params={"limit": 0}, headers=auth("sales")).status_code == 422
