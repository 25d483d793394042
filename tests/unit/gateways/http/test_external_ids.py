"""Records created with an external id: a second creation is refused (409), and every path that names a
customer, lead, deal, ticket or campaign takes its UUID, `source:id`, or the bare id when unique."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.external_ids import external_uuid
from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

SF_DEAL = {"source": "salesforce", "external_id": "006Dn00000AbCdE"}


def test_an_external_id_derives_the_id_and_a_second_creation_is_refused_with_409(client: TestClient) -> None:
    customer = register_customer(client, source="salesforce", external_id="001Dn00000XyZ")
    assert customer == str(external_uuid("customer", "salesforce", "001Dn00000XyZ"))
    again = client.post("/customers", json={"name": "张三", "region": "华东", "industry": "制造业", "channel": "web",
                                            "source": "salesforce", "external_id": "001Dn00000XyZ"},
                        headers=auth("sales"))
    assert again.status_code == 409
    assert "external id salesforce:001Dn00000XyZ already exists" in again.json()["error"]


def test_a_source_without_an_id_and_a_bad_source_are_refused(client: TestClient) -> None:
    customer = register_customer(client)
    half = client.post("/deals", json={"customer_id": customer, "title": "增购", "amount": "1", "source": "sf"},
                       headers=auth("sales"))
    assert half.status_code == 422 and "give both source and external_id" in half.json()["error"]
    bad = client.post("/deals", json={"customer_id": customer, "title": "增购", "amount": "1",
                                      "source": "Sales Force", "external_id": "1"}, headers=auth("sales"))
    assert bad.status_code == 422


def test_paths_take_the_uuid_source_id_or_the_unique_bare_id(client: TestClient, api: FastAPI) -> None:
    customer = register_customer(client, source="hubspot", external_id="501")
    deal = open_deal(client, customer, **SF_DEAL)
    project(api)
    for name in (deal, "salesforce:006Dn00000AbCdE", "006Dn00000AbCdE"):
        response = client.get(f"/deals/{name}", headers=auth("sales"))
        assert response.status_code == 200, (name, response.text)
        assert response.json()["id"] == deal and response.json()["external_id"] == "salesforce:006Dn00000AbCdE"
    history = client.get("/deals/006Dn00000AbCdE/history", headers=auth("sales"))
    assert history.status_code == 200
    moved = client.put("/deals/salesforce:006Dn00000AbCdE/stage", json={"stage": "first_contact"},
                       headers=auth("sales"))
    assert moved.status_code == 200 and moved.json()["id"] == deal
    assert client.get("/customers/501", headers=auth("sales")).json()["id"] == customer
    timeline = client.get("/customers/hubspot:501/timeline", headers=auth("sales"))
    assert timeline.status_code == 200, timeline.text
    assert timeline.json()["external_id"] == "hubspot:501"


def test_a_record_just_created_is_found_by_source_id_before_the_read_model_applies_it(client: TestClient) -> None:
    customer = register_customer(client, source="hubspot", external_id="777")
    assert client.get("/customers/hubspot:777", headers=auth("sales")).json()["id"] == customer


def test_an_ambiguous_bare_id_is_a_409_listing_the_candidates_and_an_unknown_one_a_404(
        client: TestClient, api: FastAPI) -> None:
    customer = register_customer(client)
    in_salesforce = open_deal(client, customer, source="salesforce", external_id="1001")
    in_hubspot = open_deal(client, customer, source="hubspot", external_id="1001")
    project(api)
    ambiguous = client.get("/deals/1001", headers=auth("sales"))
    assert ambiguous.status_code == 409
    assert ambiguous.json()["detail"]["candidates"] == [{"external_id": "hubspot:1001", "id": in_hubspot},
                                                       {"external_id": "salesforce:1001", "id": in_salesforce}]
    assert "say which one" in ambiguous.json()["error"]
    assert client.get("/deals/9999", headers=auth("sales")).status_code == 404
    assert client.get("/deals/zendesk:9999", headers=auth("sales")).status_code == 404
    assert client.get("/tickets/1001", headers=auth("service")).status_code == 404  # kinds are apart


def test_leads_tickets_and_campaigns_are_found_by_their_external_ids(client: TestClient, api: FastAPI) -> None:
    customer = register_customer(client)
    lead = client.post("/leads", json={"name": "王芳", "region": "华东", "industry": "互联网", "channel": "web",
                                       "source": "hubspot", "external_id": "L-42"}, headers=auth("sales")).json()["id"]
    ticket = client.post("/tickets", json={"customer_id": customer, "subject": "登录失败", "channel": "phone",
                                           "source": "zendesk", "external_id": "4711"},
                         headers=auth("service")).json()["id"]
    campaign = client.post("/campaigns", json={"name": "春季活动", "channel": "event", "budget": "1000",
                                               "source": "hubspot", "external_id": "C-1"},
                           headers=auth("admin")).json()["id"]
    project(api)
    assert client.get("/leads/L-42", headers=auth("sales")).json()["id"] == lead
    assert client.get("/tickets/4711", headers=auth("service")).json()["external_id"] == "zendesk:4711"
    assert client.get("/tickets/zendesk:4711", headers=auth("service")).json()["id"] == ticket
    assert client.get("/campaigns/C-1", headers=auth("admin")).json()["id"] == campaign
    assigned = client.put("/leads/hubspot:L-42/owner", json={"owner": "李娜"}, headers=auth("sales"))
    assert assigned.status_code == 200, assigned.text
