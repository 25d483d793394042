"""The dashboard page: every script it loads is served (plotly.js locally), nothing else is, and every API path its
scripts call is a GET route of the app — a renamed route fails here, not only in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from gateways.http.app import create_app
from gateways.web.dashboard import FILES, STATIC
from services.settings import database_from_url
from tests.unit.gateways.http.conftest import registry

CALLED = re.compile(r"api\(`(/[^`?]*)")  # api(`/deals/${id}/history?limit=500`) → /deals/${id}/history


def test_the_page_loads_only_files_that_are_served(tmp_path: Path) -> None:
    client = TestClient(create_app(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"), registry()))
    page = client.get("/dashboard")
    assert page.status_code == 200 and "销售预测" in page.text and "提醒" in page.text
    loaded = re.findall(r'(?:src|href)="/dashboard/static/([^"]+)"', page.text)
    assert sorted(loaded) == sorted(FILES)
    for name in loaded:
        answer = client.get(f"/dashboard/static/{name}")
        assert answer.status_code == 200 and answer.content, name
    assert client.get("/dashboard/static/dashboard.py").status_code == 404
    assert client.get("/dashboard/static/..%2Fdashboard.py").status_code == 404


def test_every_path_the_scripts_call_is_a_get_route(tmp_path: Path) -> None:
    app = create_app(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"), registry())
    routes = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
              for path, methods in app.openapi()["paths"].items() if "get" in methods]
    called = {re.sub(r"\$\{[^}]+\}", "x", path) for script in STATIC.glob("*.js")
              for path in CALLED.findall(script.read_text(encoding="utf-8"))}
    assert {"/forecast", "/reminders", "/deals/x/history", "/tickets/x", "/customers/x/timeline"} <= called
    assert [path for path in sorted(called) if not any(route.match(path) for route in routes)] == []
