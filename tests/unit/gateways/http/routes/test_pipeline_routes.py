"""GET /pipelines: every pipeline with its stages, exact now (the other pipeline routes: test_commands.py)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, project

ADMIN, SALES = auth("admin"), auth("sales")
RENEWAL = {"key": "renewal", "name": "续约", "stages": [{"key": "due", "label": "到期"}, {"key": "offer", "label": "报价"}]}


def keys(client: TestClient) -> list[str]:
    response = client.get("/pipelines", headers=SALES)
    assert response.status_code == 200, response.text
    return [pipeline["key"] for pipeline in response.json()["pipelines"]]


def test_the_list_has_every_pipeline_with_its_stages_and_version(client: TestClient) -> None:
    client.post("/pipelines/sales/stages", json={"stage": "discovery", "label": "探索", "after": "lead"}, headers=ADMIN)

    pipelines = {p["key"]: p for p in client.get("/pipelines", headers=SALES).json()["pipelines"]}

    assert sorted(pipelines) == ["marketing", "sales", "service"]
    sales = pipelines["sales"]
    assert sales["version"] == 2 and sales["name"] == "销售漏斗 / Sales"
    assert sales["stages"][:2] == [{"key": "lead", "label": "潜在客户获取 / Lead"}, {"key": "discovery", "label": "探索"}]
    assert sales == client.get("/pipelines/sales", headers=SALES).json()


def test_a_pipeline_is_listed_as_soon_as_it_is_defined_before_and_after_a_projector_ran(
        api: FastAPI, client: TestClient) -> None:
    client.post("/pipelines", json=RENEWAL, headers=ADMIN)
    assert keys(client) == ["marketing", "renewal", "sales", "service"]

    project(api)
    client.post("/pipelines", json={**RENEWAL, "key": "partner"}, headers=ADMIN)

    assert keys(client) == ["marketing", "partner", "renewal", "sales", "service"]


def test_the_list_needs_a_token_that_may_read_pipelines(client: TestClient) -> None:
    assert client.get("/pipelines").status_code == 401
    assert client.get("/pipelines", headers=auth("subscriber")).status_code == 403
