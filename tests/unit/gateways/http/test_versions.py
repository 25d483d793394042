"""Optimistic concurrency: If-Match / expected_version, and two writers racing for one deal."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.base import Meta
from services.application import CrmApplication
from services.commands import ChangeOwner
from tests.unit.gateways.http.conftest import auth, open_deal, register_customer

SALES = auth("sales")


@pytest.fixture
def deal(client: TestClient) -> str:
    return open_deal(client, register_customer(client))


def test_a_stale_if_match_is_409_and_writes_nothing(client: TestClient, crm: CrmApplication, deal: str) -> None:
    client.put(f"/deals/{deal}/owner", json={"owner": "王伟"}, headers=SALES)
    count = crm.event_count()

    response = client.put(f"/deals/{deal}/stage", json={"stage": "proposal"}, headers={**SALES, "If-Match": '"1"'})

    assert response.status_code == 409
    assert response.json()["error"] == f"deal {deal} is at version 2, not the expected 1"
    assert crm.event_count() == count


def test_the_current_if_match_is_accepted(client: TestClient, deal: str) -> None:
    etag = client.get(f"/deals/{deal}", headers=SALES).headers["etag"]

    response = client.put(f"/deals/{deal}/stage", json={"stage": "proposal"}, headers={**SALES, "If-Match": etag})

    assert (response.status_code, response.headers["etag"]) == (200, '"2"')


def test_expected_version_in_the_body_works_like_if_match(client: TestClient, crm: CrmApplication, deal: str) -> None:
    client.post(f"/deals/{deal}/win", json={"expected_version": 1}, headers=SALES)

    stale = client.post(f"/deals/{deal}/lose", json={"reason": "x", "expected_version": 1}, headers=SALES)

    assert stale.status_code == 409 and "not the expected 1" in stale.json()["error"]


def test_a_stale_if_match_on_contact_details_is_409(client: TestClient, crm: CrmApplication) -> None:
    customer = register_customer(client)
    client.post(f"/customers/{customer}/tags", json={"tag": "vip"}, headers=SALES)

    response = client.put(f"/customers/{customer}/contact-details", json={"email": "a@b.cn", "phone": ""},
                          headers={**SALES, "If-Match": '"1"'})

    assert response.status_code == 409


@pytest.mark.parametrize(("headers", "body", "message"), [
    ({"If-Match": '"1"'}, {"expected_version": 2}, "If-Match (1) and expected_version (2) disagree"),
    ({"If-Match": "version one"}, {}, """If-Match must be the version in quotes, like "3" (got 'version one')"""),
])
def test_an_unusable_version_is_400(client: TestClient, crm: CrmApplication, deal: str,
                                    headers: dict[str, str], body: dict[str, Any], message: str) -> None:
    count = crm.event_count()

    response = client.put(f"/deals/{deal}/amount", json={"amount": "5", **body}, headers={**SALES, **headers})

    assert (response.status_code, response.json()["error"]) == (400, message)
    assert crm.event_count() == count


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/customers/{id}/tags", {"tag": "vip"}),
    ("put", "/customers/{id}/consent", {"marketing": True}),
    ("post", "/customers/{id}/touches", {"channel": "phone", "direction": "outbound", "summary": "回访"}),
])
def test_a_stale_if_match_is_409_on_every_change(client: TestClient, crm: CrmApplication, method: str, path: str,
                                                 body: dict[str, Any]) -> None:
    customer = register_customer(client)
    client.post(f"/customers/{customer}/tags", json={"tag": "new"}, headers=SALES)  # now at version 2
    count = crm.event_count()

    stale = client.request(method, path.format(id=customer), json=body, headers={**SALES, "If-Match": '"1"'})
    current = client.request(method, path.format(id=customer), json=body, headers={**SALES, "If-Match": '"2"'})

    assert stale.status_code == 409 and "at version 2, not the expected 1" in stale.json()["error"]
    assert current.status_code == 200 and crm.event_count() == count + 1


def test_if_match_on_a_creation_is_400(client: TestClient, crm: CrmApplication) -> None:
    count = crm.event_count()

    response = client.post("/customers", json={"name": "张三", "company": "", "region": "华东", "industry": "零售",
                                               "channel": "web"}, headers={**SALES, "If-Match": '"1"'})

    assert response.status_code == 400 and "apply to changes of an existing aggregate" in response.json()["error"]
    assert crm.event_count() == count


def test_a_concurrent_save_of_the_same_deal_is_409(client: TestClient, crm: CrmApplication, deal: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer saves between this request's load and save: the log's unique version refuses it."""
    load = crm.get

    def load_then_lose_the_race(aggregate_type: type, aggregate_id: Any) -> Any:
        loaded = load(aggregate_type, aggregate_id)
        monkeypatch.setattr(crm, "get", load)
        crm.change_owner(ChangeOwner(aggregate_id, "王伟"), Meta(actor="另一位"))
        return loaded

    monkeypatch.setattr(crm, "get", load_then_lose_the_race)
    count = crm.event_count()

    response = client.put(f"/deals/{deal}/amount", json={"amount": "5"}, headers=SALES)

    assert response.status_code == 409 and response.json()["error"].startswith("conflicting write")
    assert crm.event_count() == count + 1  # only the other writer's event
    assert client.get(f"/deals/{deal}", headers=SALES).json()["amount"] == "1000"


ADMIN = auth("admin")


def _created(client: TestClient, path: str, body: dict[str, Any]) -> str:
    response = client.post(path, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _ticket(client: TestClient) -> str:
    return _created(client, "/tickets", {"customer_id": register_customer(client), "subject": "发票", "channel": "phone"})


def _lead(client: TestClient) -> str:
    return _created(client, "/leads", {"name": "李四", "region": "华南", "industry": "零售", "channel": "web"})


def _campaign(client: TestClient) -> str:
    return _created(client, "/campaigns", {"name": "春季", "channel": "web", "budget": "100"})


@pytest.mark.parametrize(("create", "method", "path", "bodies"), [
    (_ticket, "put", "/tickets/{id}/assignee", ({"assignee": "赵磊"}, {"assignee": "王芳"})),
    (_lead, "put", "/leads/{id}/owner", ({"owner": "李娜"}, {"owner": "王伟"})),
    (_campaign, "post", "/campaigns/{id}/costs", ({"amount": "5"}, {"amount": "6"})),
    (lambda client: "sales", "put", "/pipelines/{id}/stages/proposal/label", ({"label": "报价"}, {"label": "方案"})),
])
def test_a_stale_if_match_reaches_the_aggregate_on_routes_without_a_body_version(
        client: TestClient, crm: CrmApplication, create: Any, method: str, path: str,
        bodies: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """These routes took the version by a context variable; it is now the application's argument."""
    url = path.format(id=create(client))
    version = int(client.request(method, url, json=bodies[0], headers=ADMIN).headers["etag"].strip('"'))
    count = crm.event_count()

    stale = client.request(method, url, json=bodies[1], headers={**ADMIN, "If-Match": f'"{version - 1}"'})
    current = client.request(method, url, json=bodies[1], headers={**ADMIN, "If-Match": f'"{version}"'})

    assert stale.status_code == 409 and f"not the expected {version - 1}" in stale.json()["error"]
    assert current.status_code == 200 and crm.event_count() == count + 1
