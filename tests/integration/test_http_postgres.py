"""The HTTP API on the real PostgreSQL: commands, idempotency, stale and concurrent writes, the funnel."""

from __future__ import annotations

from collections.abc import Iterator
from threading import Barrier, Thread
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateways.http.app import create_app
from services.application import CrmApplication
from services.settings import database_from_url
from tests.unit.gateways.http.conftest import auth, registry

SALES = auth("sales")
CUSTOMER = {"name": "欧阳娜娜", "company": "深圳鼎盛贸易有限公司", "region": "华南", "industry": "零售",
            "channel": "social", "occurred_at": "2026-03-01T09:00:00+08:00"}


@pytest.fixture
def client(pg_database: str) -> Iterator[TestClient]:
    with TestClient(create_app(database_from_url(pg_database), registry())) as test_client:
        yield test_client


def crm(client: TestClient) -> CrmApplication:
    return client.app.state.crm  # type: ignore[attr-defined]


def new_deal(client: TestClient, amount: str = "1000", **fields: Any) -> str:
    customer = client.post("/customers", json=CUSTOMER, headers=SALES).json()["id"]
    response = client.post("/deals", json={"customer_id": customer, "title": "门店系统升级（二期）", "amount": amount,
                                           "occurred_at": "2026-03-02T09:00:00Z", **fields}, headers=SALES)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_commands_and_queries_round_trip_on_postgresql(client: TestClient) -> None:
    deal = new_deal(client, "98765.43")
    moved = client.put(f"/deals/{deal}/stage", json={"stage": "needs_analysis", "reason": "客户要求现场调研",
                                                     "occurred_at": "2026-03-03T09:00:00Z"}, headers=SALES)
    won = client.post(f"/deals/{deal}/win", json={"note": "签约", "occurred_at": "2026-03-04T09:00:00Z"},
                      headers={**SALES, "If-Match": moved.headers["etag"]})

    assert (moved.status_code, won.status_code, won.headers["etag"]) == (200, 200, '"3"')
    state = client.get(f"/deals/{deal}", headers=SALES).json()
    assert (state["title"], state["amount"], state["status"]) == ("门店系统升级（二期）", "98765.43", "won")
    history = client.get(f"/deals/{deal}/history", headers=SALES).json()
    assert [e["detail"] for e in history["items"]][1:] == ["客户要求现场调研", "签约"]


def test_an_idempotent_retry_writes_nothing_on_postgresql(client: TestClient) -> None:
    headers = {**SALES, "Idempotency-Key": "pg-1"}
    first = client.post("/customers", json=CUSTOMER, headers=headers)
    count = crm(client).event_count()

    retry = client.post("/customers", json=CUSTOMER, headers=headers)
    other = client.post("/customers", json={**CUSTOMER, "name": "李四"}, headers=headers)

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert other.status_code == 422
    assert crm(client).event_count() == count


def test_simultaneous_retries_run_the_command_once(client: TestClient) -> None:
    count = crm(client).event_count()
    answers: list[Any] = []
    threads = [Thread(target=lambda: answers.append(client.post(
        "/customers", json=CUSTOMER, headers={**SALES, "Idempotency-Key": "pg-2"}))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(a.status_code for a in answers) == [201, 201]  # no lease: the second to commit replays the first
    assert len({a.json()["id"] for a in answers}) == 1
    assert crm(client).event_count() == count + 1


def test_a_stale_if_match_is_409_on_postgresql(client: TestClient) -> None:
    deal = new_deal(client)
    client.put(f"/deals/{deal}/owner", json={"owner": "王伟"}, headers=SALES)
    count = crm(client).event_count()

    response = client.put(f"/deals/{deal}/amount", json={"amount": "5"}, headers={**SALES, "If-Match": '"1"'})

    assert response.status_code == 409 and "not the expected 1" in response.json()["error"]
    assert crm(client).event_count() == count


def test_one_of_two_concurrent_writers_gets_409(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    deal = new_deal(client)
    app = crm(client)
    both_loaded = Barrier(2, timeout=10)
    load = app.get

    def load_together(aggregate_type: type, aggregate_id: Any) -> Any:
        loaded = load(aggregate_type, aggregate_id)
        both_loaded.wait()
        return loaded

    monkeypatch.setattr(app, "get", load_together)
    count = app.event_count()
    answers: list[Any] = []
    threads = [Thread(target=lambda amount=amount: answers.append(client.put(
        f"/deals/{deal}/amount", json={"amount": amount}, headers=SALES))) for amount in ("2000", "3000")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert sorted(a.status_code for a in answers) == [200, 409]
    assert next(a for a in answers if a.status_code == 409).json()["error"].startswith("conflicting write")
    assert app.event_count() == count + 1


def test_the_funnel_on_postgresql(pg_database: str) -> None:
    with TestClient(create_app(database_from_url(pg_database), registry(), follow_log=True)) as client:  # as serve
        won, lost, open_ = new_deal(client, "1000"), new_deal(client, "500"), new_deal(client, "250.50")
        client.post(f"/deals/{won}/win", json={"occurred_at": "2026-03-05T09:00:00Z"}, headers=SALES)
        last = client.post(f"/deals/{lost}/lose", json={"reason": "价格", "occurred_at": "2026-03-05T09:00:00Z"},
                           headers=SALES)

        report = client.get("/funnel", params={"as_of": "2026-03-10T09:00:00Z", "stuck_days": 7,
                                               "wait_for_position": last.headers["X-Log-Position"]},
                            headers=auth("analyst")).json()

    assert (report["won"], report["lost"], report["won_value_cents"]) == (1, 1, 100000)
    assert (report["rows"][0]["items"], report["rows"][0]["value_cents"]) == (1, 25050)
    assert [s["item_id"] for s in report["stuck"]["items"]] == [open_] and report["stuck"]["total"] == 1
