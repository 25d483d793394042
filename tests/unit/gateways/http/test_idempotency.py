"""Idempotency-Key: a retry returns the first answer and writes nothing; misuse is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.application import CrmApplication
from tests.unit.gateways.http.conftest import auth, open_deal, register_customer

CUSTOMER = {"name": "张三", "region": "华东", "industry": "制造业", "channel": "web"}


def post(client: TestClient, key: str, body: dict[str, Any], role: str = "sales") -> Any:
    return client.post("/customers", json=body, headers={**auth(role), "Idempotency-Key": key})


def test_a_retry_returns_the_stored_answer_and_writes_nothing(client: TestClient, crm: CrmApplication) -> None:
    first = post(client, "k-1", CUSTOMER)
    count = crm.event_count()

    retry = post(client, "k-1", CUSTOMER)

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert (retry.headers["location"], retry.headers["etag"]) == (first.headers["location"], first.headers["etag"])
    assert retry.headers["idempotent-replayed"] == "true"
    assert crm.event_count() == count


def test_a_retried_change_returns_the_first_version(client: TestClient, crm: CrmApplication) -> None:
    deal = open_deal(client, register_customer(client))
    headers = {**auth("sales"), "Idempotency-Key": "move-1"}
    first = client.put(f"/deals/{deal}/stage", json={"stage": "proposal"}, headers=headers)
    count = crm.event_count()

    retry = client.put(f"/deals/{deal}/stage", json={"stage": "proposal"}, headers=headers)

    assert (retry.status_code, retry.json(), retry.headers["etag"]) == (200, first.json(), '"2"')
    assert crm.event_count() == count


def test_the_same_key_with_a_different_body_is_refused(client: TestClient, crm: CrmApplication) -> None:
    post(client, "k-2", CUSTOMER)
    count = crm.event_count()

    response = post(client, "k-2", {**CUSTOMER, "name": "李四"})

    assert response.status_code == 422
    assert "already used for a different request" in response.json()["error"]
    assert crm.event_count() == count


def test_keys_belong_to_their_principal(client: TestClient, crm: CrmApplication) -> None:
    first = post(client, "k-3", CUSTOMER, "sales")

    other = post(client, "k-3", CUSTOMER, "admin")

    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_a_refusal_is_stored_like_any_answer(client: TestClient, crm: CrmApplication) -> None:
    deal = open_deal(client, register_customer(client))
    headers = {**auth("sales"), "Idempotency-Key": "stage-x"}
    first = client.put(f"/deals/{deal}/stage", json={"stage": "no_such_stage"}, headers=headers)

    retry = client.put(f"/deals/{deal}/stage", json={"stage": "no_such_stage"}, headers=headers)

    assert first.status_code == retry.status_code == 422
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"


def test_a_conflict_is_not_stored_so_the_retry_runs_again(client: TestClient, crm: CrmApplication) -> None:
    deal = open_deal(client, register_customer(client))
    headers = {**auth("sales"), "Idempotency-Key": "amount-1"}
    client.put(f"/deals/{deal}/owner", json={"owner": "王伟"}, headers=auth("sales"))
    stale = client.put(f"/deals/{deal}/amount", json={"amount": "5", "expected_version": 1}, headers=headers)
    assert stale.status_code == 409

    retry = client.put(f"/deals/{deal}/amount", json={"amount": "5", "expected_version": 1}, headers=headers)
    fresh = client.put(f"/deals/{deal}/amount", json={"amount": "5", "expected_version": 2},
                       headers={**auth("sales"), "Idempotency-Key": "amount-2"})

    assert retry.status_code == 409 and "idempotent-replayed" not in retry.headers
    assert fresh.json()["version"] == 3


def test_a_duplicate_while_the_first_still_runs_gets_the_one_answer(
        client: TestClient, crm: CrmApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    """No lease to wait out: both copies run, the one that commits second rolls back and replays the first."""
    running, release = threading.Event(), threading.Event()
    register = CrmApplication.register_customer

    def first_one_waits(self: CrmApplication, *args: Any, **kwargs: Any) -> Any:
        if not running.is_set():
            running.set()
            release.wait(5)
        return register(self, *args, **kwargs)

    monkeypatch.setattr(CrmApplication, "register_customer", first_one_waits)
    count = crm.event_count()
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(post(client, "k-4", CUSTOMER)))
    first.start()
    assert running.wait(5)

    duplicate = post(client, "k-4", CUSTOMER)
    release.set()
    first.join(5)

    assert duplicate.status_code == answers[0].status_code == 201
    assert answers[0].json() == duplicate.json() and answers[0].headers["idempotent-replayed"] == "true"
    assert crm.event_count() == count + 1


@pytest.mark.parametrize("key", ["", "x" * 201, "two words"])
def test_an_unusable_key_is_refused(client: TestClient, crm: CrmApplication, key: str) -> None:
    count = crm.event_count()

    response = client.post("/customers", json=CUSTOMER, headers={**auth("sales"), "Idempotency-Key": key})

    assert response.status_code == 400 and "Idempotency-Key must be" in response.json()["error"]
    assert crm.event_count() == count
