"""`GET /health` (readiness) and `GET /health/live` (liveness): 503 with the reasons while a read model is
stopped or lags more than CRM_READY_MAX_LAG events; 200 again once it has caught up."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateways.http.app import create_app
from services.projection_runtime.readiness import DEFAULT_READY_MAX_LAG, READY_MAX_LAG_VARIABLE
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from tests.unit.gateways.http.conftest import project, register_customer, registry
from tests.unit.services.projection_runtime.test_projection_failures import write_unappliable_event


def test_ready_within_the_lag_allowed_and_not_ready_beyond_it_saying_which_and_why(api: FastAPI,
                                                                                  client: TestClient) -> None:
    api.state.ready_max_lag = 2
    for _ in range(3):
        register_customer(client)  # 3 events, after the default pipelines': every read model lags more than 2

    lagging = client.get("/health")
    project(api)
    caught_up = client.get("/health")

    lag = lagging.json()["read_models"]["funnel"]["lag"]
    assert lagging.status_code == 503 and lag >= 3
    assert lagging.json()["not_ready"]["funnel"] == f"{lag} events behind the log, more than CRM_READY_MAX_LAG=2"
    assert lagging.json()["status"].startswith("not ready: funnel, ") and lagging.json()["max_lag"] == 2
    assert caught_up.status_code == 200 and caught_up.json()["status"] == "ok" and caught_up.json()["not_ready"] == {}


def test_a_stopped_read_model_makes_the_server_not_ready_until_resumed(api: FastAPI, client: TestClient) -> None:
    write_unappliable_event(api.state.crm)
    project(api)

    stopped = client.get("/health")
    for name in stopped.json()["not_ready"]:
        projector_for(api.state.crm, api.state.store).resume(name, skip=True)  # the operator's repair
    project(api)
    resumed = client.get("/health")

    assert stopped.status_code == 503
    assert stopped.json()["not_ready"]["funnel"].startswith("stopped: ")
    assert "cannot apply Lead.Assigned" in stopped.json()["not_ready"]["funnel"]
    assert resumed.status_code == 200, resumed.json()


def test_liveness_needs_no_database(api: FastAPI, client: TestClient) -> None:
    api.state.store.close()  # nothing the route could read

    assert client.get("/health/live").json() == {"status": "alive"}


def test_the_lag_allowed_comes_from_the_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    assert create_app(database, registry()).state.ready_max_lag == DEFAULT_READY_MAX_LAG
    monkeypatch.setenv(READY_MAX_LAG_VARIABLE, "250")
    assert create_app(database, registry()).state.ready_max_lag == 250


def test_over_shards_only_a_stopped_read_model_makes_the_server_not_ready(tmp_path, monkeypatch) -> None:
    """The read models are fed per partition by consumers there: the follower's lag behind the shards' heads
    means nothing, and must not keep the server out of a load balancer."""
    monkeypatch.setenv(READY_MAX_LAG_VARIABLE, "0")
    shards = [database_from_url(f"sqlite:///{tmp_path / f'shard{i}.sqlite3'}") for i in range(2)]
    with TestClient(create_app(shards[0], registry(), shards=shards)) as client:
        register_customer(client)
        health = client.get("/health")

    assert health.status_code == 200 and health.json()["max_lag"] is None
    assert health.json()["read_models"]["funnel"]["lag"] > 0
