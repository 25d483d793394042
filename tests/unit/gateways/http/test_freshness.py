"""Queries never write: a GET answers from what a projector applied, says how fresh that is
(`X-Read-Model-Position` of `X-Log-Position`), and waits, bounded, for a client's own write
(`?wait_for_position=`, the `X-Log-Position` its change returned). `crm serve`'s projector makes the answers
fresh in the background."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateways.http.app import create_app
from services.projection_runtime import freshness
from services.settings import database_from_url
from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer, registry

READ_MODEL_GETS = ("/funnel", "/funnel?segment=high_value", "/segments", "/reports/tickets", "/reports/campaigns",
                   "/reports/customer-values", "/customers/{customer}/timeline")


def database_state(path: Path) -> dict[str, int]:
    """Every table's row count, and each read model's position: what a write would change."""
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {table: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}
        positions = {f"position:{name}": n for name, n in db.execute("SELECT name, position FROM projection_positions")}
    return counts | positions


def test_a_get_on_a_stale_read_model_writes_nothing_and_says_how_stale(api: FastAPI, client: TestClient,
                                                                       tmp_path: Path) -> None:
    customer = register_customer(client)
    open_deal(client, customer)
    project(api)
    open_deal(client, customer)  # recorded, not applied: every read model is one event behind
    before = database_state(tmp_path / "crm.sqlite3")

    for path in READ_MODEL_GETS:
        response = client.get(path.format(customer=customer), headers=auth("admin"))
        assert response.status_code == 200, (path, response.text)
        head = api.state.crm.event_count()
        assert (response.headers["X-Read-Model-Position"], response.headers["X-Log-Position"],
                response.headers["X-Read-Model-Lag"]) == (str(head - 1), str(head), "1"), path

    assert database_state(tmp_path / "crm.sqlite3") == before


def test_a_change_returns_its_log_position_and_a_read_waits_for_it(api: FastAPI, client: TestClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(freshness, "LONGEST_WAIT", 0.2)
    customer = register_customer(client)
    written = client.post("/deals", json={"customer_id": customer, "title": "增购", "amount": "1000"},
                          headers=auth("sales"))
    position = written.headers["X-Log-Position"]
    assert int(position) == api.state.crm.event_count()

    late = client.get("/funnel", params={"wait_for_position": position}, headers=auth("analyst"))
    project(api)
    fresh = client.get("/funnel", params={"wait_for_position": position}, headers=auth("analyst"))

    assert late.status_code == 503 and late.headers["Retry-After"] == "1"
    assert late.json()["detail"] == {"position": 0, "head": int(position), "wait_for_position": int(position)}
    assert fresh.status_code == 200 and fresh.headers["X-Read-Model-Position"] == position
    assert fresh.json()["rows"][0]["items"] == 1


def test_a_position_the_log_does_not_have_is_refused_at_once(client: TestClient) -> None:
    response = client.get("/segments", params={"wait_for_position": 10**9}, headers=auth("analyst"))

    assert response.status_code == 422 and "there is no position 1000000000" in response.json()["error"]
    beyond_bigint = client.get("/segments", params={"wait_for_position": 2**64}, headers=auth("analyst"))
    assert beyond_bigint.status_code == 422  # found by the fuzz test: it was a 500 from the database


def test_the_serve_projector_makes_a_write_readable_without_a_query_writing(tmp_path: Path) -> None:
    api = create_app(database_from_url(f"sqlite:///{tmp_path / 'serve.sqlite3'}"), registry(), follow_log=True)
    with TestClient(api) as client:
        customer = register_customer(client)
        tagged = client.post(f"/customers/{customer}/tags", json={"tag": "vip"}, headers=auth("sales"))
        position = tagged.headers["X-Log-Position"]

        timeline = client.get(f"/customers/{customer}/timeline", params={"wait_for_position": position},
                              headers=auth("sales"))

    assert timeline.status_code == 200, timeline.text
    assert int(timeline.headers["X-Read-Model-Position"]) >= int(position)
    assert timeline.json()["items"][-1]["kind"] == "Customer.TagAdded"
