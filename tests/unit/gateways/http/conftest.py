"""The API on an SQLite file log, with one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateways.http.app import create_app
from gateways.http.tokens import Principal, TokenRegistry, hash_token
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url

TOKENS = {
    "admin": ("tok-admin-3f9c1a", "管理员"),
    "sales": ("tok-sales-8b2e4d", "李娜"),
    "service": ("tok-service-5c7a90", "赵磊"),
    "analyst": ("tok-analyst-1d6f37", "王芳"),
    "subscriber": ("tok-subscriber-7e1b52", "billing-service"),
    "monitor": ("tok-monitor-4a8d21", "prometheus"),
}


def registry() -> TokenRegistry:
    return TokenRegistry((hash_token(token), Principal(name, role)) for role, (token, name) in TOKENS.items())


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role][0]}"}


@pytest.fixture
def api(tmp_path: Path) -> FastAPI:
    return create_app(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"), registry())


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


@pytest.fixture
def crm(api: FastAPI) -> CrmApplication:
    """The application behind the API (to count events and read histories)."""
    return api.state.crm


def project(api: FastAPI) -> None:
    """Bring the read models up to the log's head, as `crm projections follow` or `crm serve`'s projector
    does: the API's queries only read what a projector has applied."""
    projector_for(api.state.crm, api.state.store).catch_up(strict=False)


def register_customer(client: TestClient, **fields: object) -> str:
    body = {"name": "张三", "company": "华为", "region": "华东", "industry": "制造业", "channel": "web", **fields}
    response = client.post("/customers", json=body, headers=auth("sales"))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def open_deal(client: TestClient, customer_id: str, **fields: object) -> str:
    body = {"customer_id": customer_id, "title": "增购", "amount": "1000", **fields}
    response = client.post("/deals", json=body, headers=auth("sales"))
    assert response.status_code == 201, response.text
    return response.json()["id"]
