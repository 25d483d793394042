"""Bad input is refused with a 4xx, a JSON message saying why, and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from gateways.http.json_body import StrictJsonRoute
from services.application import CrmApplication
from tests.unit.gateways.http.conftest import auth, open_deal, register_customer

SALES = auth("sales")
CUSTOMER = {"name": "张三", "region": "华东", "industry": "制造业", "channel": "web"}


def refused(client: TestClient, crm: CrmApplication, method: str, path: str, status: int, message: str,
            **request: Any) -> dict[str, Any]:
    """Send the request; assert the status, that the error says `message` and that no event was recorded."""
    count = crm.event_count()
    response = client.request(method, path, **{"headers": SALES, **request})
    body = response.json()
    assert response.status_code == status, response.text
    assert message in body["error"], body
    assert set(body) == {"error", "detail"}
    assert crm.event_count() == count
    return body


@pytest.fixture
def deal(client: TestClient) -> str:
    return open_deal(client, register_customer(client, occurred_at="2026-03-01T09:00:00Z"),
                     occurred_at="2026-03-02T09:00:00Z")


def test_a_missing_field_names_every_missing_field(client: TestClient, crm: CrmApplication) -> None:
    body = refused(client, crm, "POST", "/deals", 422, "invalid request: body.customer_id: Field required",
                   json={"amount": "5"})

    assert [issue["field"] for issue in body["detail"]] == ["body.customer_id", "body.title"]


@pytest.mark.parametrize(("path_field", "value", "message"), [
    ("amount", 1200.5, "body.amount"),
    ("amount", "-5", "body.amount"),
    ("amount", "12,000", "body.amount"),
    ("title", 42, "body.title: Input should be a valid string"),
    ("customer_id", "not-a-uuid", "body.customer_id"),
    ("occurred_at", "2026-03-01T09:00:00", "body.occurred_at: Input should have timezone info"),
    ("occurred_at", "next tuesday", "body.occurred_at"),
    ("title", "长" * 201, "body.title: String should have at most 200 characters"),
    ("colour", "red", "body.colour: Extra inputs are not permitted"),
    ("expected_close", "0001-01-01", "body.expected_close: Value error, must be between 1900-01-01 and 2999-12-31"),
    ("expected_close", "9999-12-31", "body.expected_close: Value error, must be between 1900-01-01 and 2999-12-31"),
    ("expected_close", 1772355600, "body.expected_close: Value error, must be an ISO 8601 date like 2026-06-30"),
    ("expected_close", "2026-06-30T00:00:00Z", "body.expected_close: Value error, must be an ISO 8601 date"),
])
def test_wrong_types_and_sizes_are_refused_before_the_domain(client: TestClient, crm: CrmApplication,
                                                             path_field: str, value: Any, message: str) -> None:
    customer = register_customer(client)
    body = {"customer_id": customer, "title": "增购", "amount": "1000", path_field: value}

    refused(client, crm, "POST", "/deals", 422, message, json=body)


def test_a_conversions_expected_close_is_held_to_business_years(client: TestClient, crm: CrmApplication) -> None:
    lead = client.post("/leads", json={"name": "刘洋", "region": "华南", "industry": "电子", "channel": "event"},
                       headers=SALES).json()["id"]

    refused(client, crm, "POST", f"/leads/{lead}/convert", 422, "body.expected_close: Value error, must be between "
            "1900-01-01 and 2999-12-31 (UTC)", json={"deal_title": "门店系统", "amount": "1", "expected_close": "3000-01-01"})


def test_strict_scalars_refuse_look_alikes(client: TestClient, crm: CrmApplication) -> None:
    customer = register_customer(client)

    refused(client, crm, "PUT", f"/customers/{customer}/consent", 422, "body.marketing: Input should be a valid "
            "boolean", json={"marketing": "true"})
    refused(client, crm, "POST", f"/customers/{customer}/touches", 422, "body.channel: Input should be a valid "
            "string", json={"channel": 5, "direction": "inbound", "summary": ""})


def test_an_unknown_stage_is_refused_by_the_domain(client: TestClient, crm: CrmApplication, deal: str) -> None:
    refused(client, crm, "PUT", f"/deals/{deal}/stage", 422, "unknown stage 'signing' in pipeline 'sales'",
            json={"stage": "signing"})


@pytest.mark.parametrize(("path", "code", "message"), [
    ("/deals", "XXX", "currency 'XXX' is not one a customer pays in (ISO 4217: The codes assigned for transactions "
                      "where no currency is involved)"),
    ("/deals", "XAU", "currency 'XAU' is not one a customer pays in (ISO 4217: Gold)"),
    ("/campaigns", "ABC", "currency 'ABC' is not an ISO 4217 currency code"),
])
def test_a_code_outside_iso_4217s_currencies_is_refused(client: TestClient, crm: CrmApplication, path: str,
                                                       code: str, message: str) -> None:
    body = ({"customer_id": register_customer(client), "title": "增购", "amount": "1000"} if path == "/deals"
            else {"name": "双十一促销", "channel": "social", "budget": "50000"})

    refused(client, crm, "POST", path, 422, message, json={**body, "currency": code})


def test_a_broken_rule_is_refused_with_the_domain_message(client: TestClient, crm: CrmApplication, deal: str) -> None:
    client.post(f"/deals/{deal}/lose", json={"reason": "价格"}, headers=SALES)

    refused(client, crm, "POST", f"/deals/{deal}/win", 422, "cannot win it: deal is lost; reopen it first")


def test_business_time_before_the_last_event_is_refused(client: TestClient, crm: CrmApplication, deal: str) -> None:
    refused(client, crm, "POST", f"/deals/{deal}/win", 422, "is before this Deal's last event",
            json={"occurred_at": "2026-03-01T00:00:00Z"})


def test_an_unknown_id_is_404(client: TestClient, crm: CrmApplication) -> None:
    missing = "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e03"

    refused(client, crm, "PUT", f"/deals/{missing}/amount", 404, f"no deal with id {missing}", json={"amount": 1})
    refused(client, crm, "GET", f"/tickets/{missing}", 404, f"no ticket with id {missing}", headers=auth("service"))
    refused(client, crm, "GET", "/pipelines/renewal", 404, "no pipeline 'renewal'")


def test_an_id_of_another_kind_is_404(client: TestClient, crm: CrmApplication, deal: str) -> None:
    refused(client, crm, "GET", f"/customers/{deal}", 404, "is a deal, not a customer")


def test_an_id_in_the_path_that_is_no_uuid_and_no_known_external_id_is_404(client: TestClient,
                                                                           crm: CrmApplication) -> None:
    refused(client, crm, "GET", "/deals/12345", 404, "no deal with id or external id '12345'")
    refused(client, crm, "GET", "/deals/" + "x" * 251, 422, "path.deal_id")


def test_a_body_declared_over_64_kib_is_refused_before_reading(client: TestClient, crm: CrmApplication) -> None:
    body = refused(client, crm, "POST", "/customers", 413, "request body is larger than 65536 bytes",
                   content=b"{" + b" " * 70_000 + b"}", headers={**SALES, "Content-Type": "application/json"})

    assert body["detail"] == {"content_length": 70_002}


def test_a_streamed_body_over_64_kib_is_refused_while_reading(client: TestClient, crm: CrmApplication) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 4096

    refused(client, crm, "POST", "/customers", 413, "request body is larger than 65536 bytes",
            content=chunks(), headers={**SALES, "Content-Type": "application/json"})


def test_broken_json_is_400(client: TestClient, crm: CrmApplication) -> None:
    refused(client, crm, "POST", "/customers", 400, "request body is not valid JSON",
            content='{"name": "张三",'.encode(), headers={**SALES, "Content-Type": "application/json"})


@pytest.mark.parametrize(("content", "key"), [
    ('{"name": "张三", "region": "华东", "industry": "制造业", "channel": "web", "name": "李四"}', "name"),
    ('{"name": "张三", "region": "华东", "industry": "制造业", "channel": "web", "email": {"a": 1, "a": 2}}',
     "a"),
])
def test_a_key_named_twice_is_400_naming_the_key(client: TestClient, crm: CrmApplication, content: str,
                                                 key: str) -> None:
    refused(client, crm, "POST", "/customers", 400, f"request body refused: the key {key!r} appears more than once "
            "in one JSON object", content=content.encode(), headers={**SALES, "Content-Type": "application/json"})


def test_every_route_with_a_body_refuses_repeated_keys(api: FastAPI) -> None:
    routes = [context.route for context in iter_route_contexts(api.routes)]
    with_body = [route for route in routes if isinstance(route, APIRoute) and route.body_field is not None]

    assert len(with_body) > 30
    assert [route.path for route in with_body if not isinstance(route, StrictJsonRoute)] == []


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_that_is_not_json_is_415(client: TestClient, crm: CrmApplication, content_type: str | None) -> None:
    headers = {**SALES, **({"Content-Type": content_type} if content_type else {})}

    refused(client, crm, "POST", "/customers", 415, "send the command as application/json",
            content=b"name=x", headers=headers)


def test_a_page_larger_than_500_is_refused(client: TestClient, crm: CrmApplication, deal: str) -> None:
    refused(client, crm, "GET", f"/deals/{deal}/history?limit=501", 422,
            "query.limit: Input should be less than or equal to 500")


def test_an_unknown_pipeline_in_a_funnel_query_is_422(client: TestClient, crm: CrmApplication) -> None:
    refused(client, crm, "GET", "/funnel?pipeline=renewal", 422, "unknown pipeline 'renewal'")


def test_a_method_no_route_takes_is_405_naming_every_method_the_path_has(client) -> None:
    # GET and POST /exchange-rates are two routes; Starlette alone named only the first one's method
    response = client.put("/exchange-rates", json={}, headers=auth("admin"))

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert "not allowed" in response.json()["error"].lower()


def test_a_405_names_the_methods_of_the_most_concrete_path(client) -> None:
    # /customers/1/tags/removals is documented with POST only, though DELETE /customers/{id}/tags/{tag} matches it
    response = client.options("/customers/1/tags/removals", headers=auth("admin"))

    assert (response.status_code, response.headers["allow"]) == (405, "POST")
