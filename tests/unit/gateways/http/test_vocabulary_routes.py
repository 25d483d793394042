"""GET/PUT/POST /vocabularies: read with vocabularies:read, change with vocabularies:write; the bodies of
customers, leads, touches and lost deals then follow them, and fields real data lacks may be left out."""

from __future__ import annotations

from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.application import CrmApplication
from tests.unit.gateways.http.conftest import auth, project

ADMIN, SALES, ANALYST = auth("admin"), auth("sales"), auth("analyst")


def test_a_kind_never_defined_answers_its_defaults(client: TestClient) -> None:
    response = client.get("/vocabularies/touch_channel", headers=SALES)

    assert response.status_code == 200
    assert response.json() == {"kind": "touch_channel", "values": ["email", "phone", "visit", "social", "web",
                                                                   "event"],
                               "open": False, "retired": [], "defined": False, "version": 0}
    assert "etag" not in response.headers
    kinds = [view["kind"] for view in client.get("/vocabularies", headers=ANALYST).json()["items"]]
    assert kinds == ["acquisition_channel", "touch_channel", "region", "industry", "loss_reason"]


def test_set_add_retire_then_bodies_follow_the_vocabulary(client: TestClient, crm: CrmApplication) -> None:
    put = client.put("/vocabularies/acquisition_channel/values", json={"values": ["paid_search", "直播"]},
                     headers=ADMIN)
    added = client.post("/vocabularies/acquisition_channel/additions", json={"value": "display"}, headers=ADMIN)
    retired = client.post("/vocabularies/acquisition_channel/retirements", json={"value": "直播"},
                          headers={**ADMIN, "If-Match": '"2"'})

    assert [r.status_code for r in (put, added, retired)] == [200, 200, 200]
    assert retired.json()["version"] == 3
    view = client.get("/vocabularies/acquisition_channel", headers=SALES)
    assert view.headers["etag"] == '"3"'
    assert (view.json()["values"], view.json()["retired"]) == (["paid_search", "display"], ["直播"])

    accepted = client.post("/leads", json={"channel": "paid_search", "company": "某公司"}, headers=SALES)
    refused = client.post("/leads", json={"channel": "直播"}, headers=SALES)
    assert accepted.status_code == 201
    assert refused.status_code == 422
    assert refused.json()["error"] == "unknown acquisition channel '直播'; expected one of: display, paid_search"


def test_fields_real_data_lacks_may_be_left_out(client: TestClient, crm: CrmApplication) -> None:
    customer = client.post("/customers", json={"name": "张三"}, headers=SALES).json()["id"]
    touch = client.post(f"/customers/{customer}/touches", json={"direction": "inbound", "summary": ""},
                        headers=SALES)
    deal = client.post("/deals", json={"customer_id": customer, "title": "采购", "amount": "10"},
                       headers=SALES).json()["id"]
    lost = client.post(f"/deals/{deal}/lose", json={}, headers=SALES)

    assert (touch.status_code, lost.status_code) == (200, 200), (touch.text, lost.text)
    registered, touched = crm.history(UUID(customer))[:2]
    assert (registered.region, registered.industry, registered.channel, touched.channel) == ("unknown",) * 4
    assert crm.history(UUID(deal))[-1].reason == "unknown"


def test_writing_needs_vocabularies_write(client: TestClient, crm: CrmApplication) -> None:
    count = crm.event_count()
    added = client.post("/vocabularies/industry/additions", json={"value": "B2B/SaaS"}, headers=ADMIN)
    assert added.status_code == 200 and crm.event_count() == count + 2  # the defaults, then the value
    count = crm.event_count()

    response = client.post("/vocabularies/industry/additions", json={"value": "B2B/SaaS"}, headers=SALES)

    assert response.status_code == 403
    assert crm.event_count() == count


def test_bad_input_is_refused_with_a_sentence(client: TestClient, crm: CrmApplication) -> None:
    count = crm.event_count()

    unknown_kind = client.get("/vocabularies/colour", headers=SALES)
    duplicate = client.put("/vocabularies/industry/values", json={"values": ["金融", "金融"]}, headers=ADMIN)
    not_text = client.put("/vocabularies/industry/values", json={"values": [1]}, headers=ADMIN)
    stale = client.post("/vocabularies/industry/additions", json={"value": "金融", "expected_version": 4},
                        headers=ADMIN)

    assert [r.status_code for r in (unknown_kind, duplicate, not_text, stale)] == [422, 422, 422, 409]
    assert "must be unique" in duplicate.json()["error"]
    assert crm.event_count() == count


def test_a_sparse_body_with_an_external_id_and_an_added_channel_is_found_by_it(client: TestClient,
                                                                               api: FastAPI) -> None:
    """Parts vocab and extids in one body: region and industry left out (unknown), an installation's channel,
    `source` and `external_id` last; the lead is then found by its bare id."""
    client.post("/vocabularies/acquisition_channel/additions", json={"value": "直播"}, headers=ADMIN)
    created = client.post("/leads", json={"channel": "直播", "source": "hubspot", "external_id": "L-9"},
                          headers=SALES)
    assert created.status_code == 201, created.text
    project(api)

    view = client.get("/leads/L-9", headers=SALES).json()
    assert (view["id"], view["channel"], view["region"], view["external_id"]) == (
        created.json()["id"], "直播", "unknown", "hubspot:L-9")
