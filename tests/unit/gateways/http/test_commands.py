"""Every domain command over HTTP: status, id/version/ETag/Location, and the state it leaves."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

from fastapi.testclient import TestClient

from services.application import CrmApplication
from tests.unit.gateways.http.conftest import auth, open_deal, register_customer

SALES, SERVICE, ADMIN = auth("sales"), auth("service"), auth("admin")


def test_creating_returns_201_with_id_location_and_version_etag(client: TestClient) -> None:
    response = client.post("/customers", json={"name": "张三", "region": "华东", "industry": "制造业",
                                               "channel": "web"}, headers=SALES)

    assert response.status_code == 201
    customer_id = response.json()["id"]
    assert response.json() == {"id": customer_id, "version": 1}
    assert response.headers["location"] == f"/customers/{customer_id}"
    assert response.headers["etag"] == '"1"'


def test_chinese_text_round_trips_through_commands_and_queries(client: TestClient, crm: CrmApplication) -> None:
    customer = register_customer(client, name="欧阳娜娜", company="北京字节跳动科技有限公司", region="华北")
    client.post(f"/customers/{customer}/tags", json={"tag": "重点客户"}, headers=SALES)
    client.post(f"/customers/{customer}/touches", json={"channel": "visit", "direction": "outbound",
                                                        "summary": "上门拜访，讨论二期需求"}, headers=SALES)

    body = client.get(f"/customers/{customer}", headers=SALES).json()
    assert (body["name"], body["company"], body["region"], body["tags"]) == (
        "欧阳娜娜", "北京字节跳动科技有限公司", "华北", ["重点客户"])
    assert crm.history(UUID(customer))[-1].summary == "上门拜访，讨论二期需求"


def test_commands_record_business_time_the_principal_and_the_correlation_id(
        client: TestClient, crm: CrmApplication) -> None:
    customer = register_customer(client, occurred_at="2026-03-01T09:00:00Z")

    client.post(f"/customers/{customer}/tags", json={"tag": "vip", "occurred_at": "2026-03-02T17:30:00+08:00"},
                headers={**SALES, "X-Correlation-Id": "req-42"})

    event = crm.history(UUID(customer))[-1]
    assert event.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    assert (event.actor, event.correlation_id) == ("李娜", "req-42")


def test_without_a_correlation_id_each_command_gets_a_new_one(client: TestClient, crm: CrmApplication) -> None:
    customer = register_customer(client)
    client.post(f"/customers/{customer}/tags", json={"tag": "vip"}, headers=SALES)

    first, second = (event.correlation_id for event in crm.history(UUID(customer)))
    assert first != second and len(first) == len(second) == 32


def test_customer_commands_change_contact_details_touches_tags_consent_and_forget(client: TestClient) -> None:
    customer = register_customer(client)
    steps = [
        client.put(f"/customers/{customer}/contact-details", json={"email": "z@example.cn", "phone": "13800000000"},
                   headers=SALES),
        client.post(f"/customers/{customer}/touches", json={"channel": "phone", "direction": "inbound",
                                                            "summary": "咨询发票"}, headers=SERVICE),
        client.post(f"/customers/{customer}/tags", json={"tag": "大客户"}, headers=SALES),
        client.post(f"/customers/{customer}/tags", json={"tag": "华东"}, headers=SALES),
        client.delete(f"/customers/{customer}/tags/大客户", headers=SALES),
        client.post(f"/customers/{customer}/tags", json={"tag": "老客户"}, headers=SALES),
        client.post(f"/customers/{customer}/tags/removals", json={"tag": "老客户"}, headers=SALES),  # not in the URL
        client.put(f"/customers/{customer}/consent", json={"marketing": True}, headers=SALES),
    ]
    assert [(r.status_code, r.json()["version"], r.headers["etag"]) for r in steps] == [
        (200, v, f'"{v}"') for v in range(2, 10)]
    state = client.get(f"/customers/{customer}", headers=SERVICE).json()
    assert (state["email"], state["tags"], state["marketing_consent"]) == ("z@example.cn", ["华东"], True)

    forgotten = client.post(f"/customers/{customer}/forget", headers=SALES)

    assert forgotten.json() == {"id": customer, "version": 10}
    state = client.get(f"/customers/{customer}", headers=SALES).json()
    assert (state["name"], state["email"], state["forgotten"]) == ("(forgotten)", "", True)


def test_a_lead_is_assigned_contacted_qualified_and_converted_into_a_customer_and_a_deal(client: TestClient) -> None:
    lead = client.post("/leads", json={"name": "刘洋", "company": "小米", "region": "华南", "industry": "电子",
                                       "channel": "event", "contact": "13900000000"}, headers=SALES).json()["id"]
    assigned = client.put(f"/leads/{lead}/owner", json={"owner": "李娜", "rule": "region"}, headers=SALES)
    assert assigned.status_code == 200
    assert client.post(f"/leads/{lead}/contacts", json={"channel": "phone", "summary": "首次电话"},
                       headers=SALES).status_code == 200
    assert client.post(f"/leads/{lead}/qualify", json={"note": "预算明确"}, headers=SALES).json()["version"] == 4

    converted = client.post(f"/leads/{lead}/convert", json={"deal_title": "小米门店系统", "amount": "250000.00",
                                                            "expected_close": "2026-06-30"}, headers=SALES)

    assert converted.status_code == 201
    ids = converted.json()
    assert converted.headers["location"] == f"/deals/{ids['deal_id']}"
    deal = client.get(f"/deals/{ids['deal_id']}", headers=SALES).json()
    assert (deal["customer_id"], deal["lead_id"], deal["owner"], deal["amount"], deal["expected_close"]) == (
        ids["customer_id"], lead, "李娜", "250000.00", "2026-06-30")
    assert client.get(f"/leads/{lead}", headers=SALES).json()["status"] == "converted"
    assert client.get(f"/customers/{ids['customer_id']}", headers=SALES).json()["name"] == "刘洋"


def test_a_lead_can_be_disqualified_with_a_reason(client: TestClient) -> None:
    lead = client.post("/leads", json={"name": "陈晨", "region": "西南", "industry": "零售", "channel": "web"},
                       headers=SALES).json()["id"]

    response = client.post(f"/leads/{lead}/disqualify", json={"reason": "无预算"}, headers=SALES)

    assert response.json() == {"id": lead, "version": 2}
    assert client.get(f"/leads/{lead}", headers=SALES).json()["status"] == "disqualified"


def test_a_deal_moves_changes_amount_and_owner_is_lost_reopened_and_won(client: TestClient) -> None:
    deal = open_deal(client, register_customer(client), amount=1000)
    versions = [
        client.put(f"/deals/{deal}/stage", json={"stage": "proposal", "reason": "需求确认"}, headers=SALES),
        client.put(f"/deals/{deal}/amount", json={"amount": "1200.50"}, headers=SALES),
        client.put(f"/deals/{deal}/owner", json={"owner": "王伟"}, headers=SALES),
        client.post(f"/deals/{deal}/lose", json={"reason": "价格", "competitor": "金蝶"}, headers=SALES),
        client.post(f"/deals/{deal}/reopen", json={"reason": "客户回来了", "stage": "negotiation"}, headers=SALES),
        client.post(f"/deals/{deal}/win", json={"note": "签约"}, headers=SALES),
    ]
    assert [r.json()["version"] for r in versions] == [2, 3, 4, 5, 6, 7]

    state = client.get(f"/deals/{deal}", headers=SALES)
    assert state.headers["etag"] == '"7"'
    body = state.json()
    assert (body["stage"], body["status"], body["amount"], body["owner"]) == ("negotiation", "won", "1200.50", "王伟")
    lost = client.get(f"/deals/{deal}/history", params={"offset": 4, "limit": 1}, headers=SALES).json()["items"][0]
    assert (lost["event"], lost["detail"]) == ("Lost", "价格 (to 金蝶)")


def test_a_reopened_deals_audit_row_shows_the_terminal_stage_it_left(client: TestClient) -> None:
    deal = open_deal(client, register_customer(client))
    for path, body in (("lose", {"reason": "价格"}), ("reopen", {"reason": "客户回来了", "stage": "proposal"}),
                       ("win", {"note": "签约"}), ("reopen", {"reason": "合同作废"})):
        assert client.post(f"/deals/{deal}/{path}", json=body, headers=SALES).status_code == 200

    items = client.get(f"/deals/{deal}/history", headers=SALES).json()["items"]

    moves = [(i["event"], i["from_stage"], i["to_stage"]) for i in items[1:]]
    assert moves == [("Lost", "lead", "lost"), ("Reopened", "lost", "proposal"),
                     ("Won", "proposal", "won"), ("Reopened", "won", "proposal")]


def test_a_campaign_is_planned_launched_costed_answered_and_closed(client: TestClient) -> None:
    customer = register_customer(client)
    campaign = client.post("/campaigns", json={"name": "双十一促销", "channel": "social", "budget": "50000"},
                           headers=SALES).json()["id"]
    steps = [client.post(f"/campaigns/{campaign}/launch", headers=SALES),
             client.post(f"/campaigns/{campaign}/costs", json={"amount": "1500.50", "note": "广告"}, headers=SALES),
             client.post(f"/campaigns/{campaign}/costs", json={"amount": 500}, headers=SALES),
             client.post(f"/campaigns/{campaign}/responses", json={"kind": "click", "customer_id": customer},
                         headers=SALES),
             client.post(f"/campaigns/{campaign}/close", json={}, headers=SALES)]

    assert [r.status_code for r in steps] == [200] * 5
    state = client.get(f"/campaigns/{campaign}", headers=SALES).json()
    assert (state["name"], state["budget"], state["cost"], state["status"]) == (
        "双十一促销", "50000", "2000.50", "closed")


def test_a_ticket_is_assigned_worked_answered_resolved_rated_closed_and_reopened(client: TestClient) -> None:
    customer = register_customer(client)
    ticket = client.post("/tickets", json={"customer_id": customer, "subject": "无法登录", "priority": "high",
                                           "channel": "phone"}, headers=SERVICE)
    assert ticket.status_code == 201 and ticket.headers["location"] == f"/tickets/{ticket.json()['id']}"
    ticket_id = ticket.json()["id"]
    steps = [client.put(f"/tickets/{ticket_id}/assignee", json={"assignee": "赵磊"}, headers=SERVICE),
             client.put(f"/tickets/{ticket_id}/status", json={"status": "in_progress"}, headers=SERVICE),
             client.post(f"/tickets/{ticket_id}/replies", json={"message": "还是不行"}, headers=SERVICE),
             client.post(f"/tickets/{ticket_id}/resolve", json={"resolution": "重置密码"}, headers=SERVICE),
             client.post(f"/tickets/{ticket_id}/rating", json={"score": 5, "comment": "很满意"}, headers=SERVICE),
             client.post(f"/tickets/{ticket_id}/close", headers=SERVICE),
             client.post(f"/tickets/{ticket_id}/reopen", json={"reason": "又出现了"}, headers=SERVICE)]

    assert [r.json()["version"] for r in steps] == [2, 3, 4, 5, 6, 7, 8]
    state = client.get(f"/tickets/{ticket_id}", headers=SERVICE).json()
    assert (state["status"], state["assignee"], state["rated"]) == ("open", "赵磊", False)


def test_pipelines_are_defined_and_their_stages_renamed_and_inserted(client: TestClient) -> None:
    defined = client.post("/pipelines", json={"key": "renewal", "name": "续约", "stages": [
        {"key": "due", "label": "到期"}, {"key": "offer", "label": "报价"}]}, headers=ADMIN)
    assert defined.status_code == 201 and defined.headers["location"] == "/pipelines/renewal"

    renamed = client.put("/pipelines/renewal/stages/offer/label", json={"label": "续约报价"}, headers=ADMIN)
    inserted = client.post("/pipelines/renewal/stages", json={"stage": "call", "label": "回访", "after": "due"},
                           headers=ADMIN)

    assert (renamed.json()["version"], inserted.json()["version"]) == (2, 3)
    pipeline = client.get("/pipelines/renewal", headers=SALES)
    assert pipeline.headers["etag"] == '"3"'
    assert pipeline.json()["stages"] == [{"key": "due", "label": "到期"}, {"key": "call", "label": "回访"},
                                         {"key": "offer", "label": "续约报价"}]
