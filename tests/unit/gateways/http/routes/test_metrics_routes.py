"""`GET /metrics` on the API: who may read it, and that commands and requests are counted as they happen."""

from __future__ import annotations

from uuid import uuid4

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, role: str = "monitor") -> Samples:
    response = client.get("/metrics", headers=auth(role))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def commands(found: Samples, command: str, outcome: str) -> float:
    return found.get(("crm_command_duration_seconds_count", (("command", command), ("outcome", outcome))), 0.0)


def requests(found: Samples, method: str, route: str, status: int) -> float:
    return found.get(("crm_http_requests_total", (("method", method), ("route", route), ("status", str(status)))), 0.0)


def test_the_relay_named_for_the_lag_is_the_relays_own_name() -> None:
    from gateways.http.app import RELAYS
    from gateways.kafka.relay import RELAY_NAME

    assert RELAYS == (RELAY_NAME,)


def test_metrics_need_a_token_whose_role_grants_them(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth("sales")).status_code == 403
    assert client.get("/metrics", headers=auth("analyst")).status_code == 200
    assert client.get("/funnel", headers=auth("monitor")).status_code == 403  # the scraper reads nothing else


def test_commands_are_timed_by_type_and_outcome(client: TestClient) -> None:
    """Counts are of this process (other tests add to them): compared before and after."""
    before = scrape(client)
    customer = register_customer(client)
    deal = open_deal(client, customer)
    stale = client.put(f"/deals/{deal}/stage", json={"stage": "first_contact"},
                        headers={**auth("sales"), "If-Match": '"7"'})
    unknown = client.put(f"/deals/{uuid4()}/stage", json={"stage": "first_contact"}, headers=auth("sales"))
    refused = client.put(f"/deals/{deal}/stage", json={"stage": "nowhere"}, headers=auth("sales"))
    after = scrape(client)

    assert (stale.status_code, unknown.status_code, refused.status_code) == (409, 404, 422)
    assert commands(after, "RegisterCustomer", "ok") - commands(before, "RegisterCustomer", "ok") == 1
    assert commands(after, "OpenDeal", "ok") - commands(before, "OpenDeal", "ok") == 1
    assert commands(after, "ChangeStage", "conflict") - commands(before, "ChangeStage", "conflict") == 1
    assert commands(after, "ChangeStage", "refused") - commands(before, "ChangeStage", "refused") == 2


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    before = scrape(client)
    register_customer(client)
    client.get(f"/customers/{uuid4()}", headers=auth("sales"))
    client.get("/no/such/page")
    client.get("/openapi.json")  # a page without parameters: its path is its template
    client.post("/customers", json={})  # no token: refused before routing
    after = scrape(client)

    assert requests(after, "POST", "/customers", 201) - requests(before, "POST", "/customers", 201) == 1
    one = "/customers/{customer_id}"
    assert requests(after, "GET", one, 404) - requests(before, "GET", one, 404) == 1
    assert requests(after, "GET", "unmatched", 404) - requests(before, "GET", "unmatched", 404) == 1
    assert requests(after, "GET", "/openapi.json", 200) - requests(before, "GET", "/openapi.json", 200) == 1
    assert requests(after, "POST", "unmatched", 401) - requests(before, "POST", "unmatched", 401) == 1
    assert not [key for key in after if key[0] == "crm_http_requests_total" and "uuid" in str(key)]


def test_projection_lag_appears_and_goes_when_the_read_models_catch_up(api: FastAPI, client: TestClient) -> None:
    register_customer(client)
    lagging = scrape(client)
    project(api)
    caught_up = scrape(client)

    funnel = ("crm_projection_lag_events", (("partition", "all"), ("read_model", "funnel")))
    assert lagging[funnel] >= 1 and caught_up[funnel] == 0
    assert caught_up[("crm_read_model_stopped", (("read_model", "funnel"),))] == 0
    assert caught_up[("crm_metrics_source_up", (("source", "read_models"),))] == 1


def test_metrics_answer_while_the_database_guard_refuses_everything_else(api: FastAPI, client: TestClient,
                                                                          monkeypatch) -> None:
    from gateways.http.availability import DatabaseProbe

    monkeypatch.setattr(DatabaseProbe, "recently_up", lambda self: False)
    monkeypatch.setattr(DatabaseProbe, "up", lambda self: False)

    assert client.get("/customers", headers=auth("sales")).status_code == 503
    assert requests(scrape(client), "GET", "unmatched", 503) >= 1
