"""deploy/grafana/crm-dashboard.json: valid JSON whose queries name only metrics /metrics exposes, with a panel
for each thing issue 13 asks to see."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from services.application import CrmApplication
from services.metrics import standard_registry
from services.projection_runtime.registry import READ_MODELS
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "crm-dashboard.json"
METRIC = re.compile(r"\bcrm_[a-z0-9_]+")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def queries(found: dict[str, Any]) -> dict[str, list[str]]:
    return {panel["title"]: [target["expr"] for target in panel["targets"]] for panel in found["panels"]}


def test_every_metric_the_dashboard_queries_is_one_the_registry_exposes(tmp_path: Path) -> None:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    store = ReadModelStore(app.database)
    try:
        exposed = standard_registry(app, store, list(READ_MODELS), ["kafka-relay"]).names()
    finally:
        store.close()
        app.close()

    queried = {name for exprs in queries(dashboard()).values() for expr in exprs for name in METRIC.findall(expr)}

    assert queried and queried <= exposed, queried - exposed
    assert exposed - queried <= {"crm_command_duration_seconds_sum", "crm_rebuild_events_applied",
                                 "crm_rebuild_events_total", "crm_projection_offset"}  # all but these are shown


def test_the_dashboard_has_a_panel_for_each_thing_to_watch() -> None:
    found = dashboard()
    by_title = queries(found)

    assert len({panel["id"] for panel in found["panels"]}) == len(found["panels"])
    latency = by_title["Command latency p50 / p99 (answered, by command)"]
    assert any("histogram_quantile(0.99" in expr for expr in latency)
    for title, metric in [("HTTP requests/s by status", "crm_http_requests_total"),
                          ("Projection lag per read model and partition (events)", "crm_projection_lag_events"),
                          ("Relay lag per shard (events)", "crm_relay_lag_events"),
                          ("Consumer-group lag per partition (messages)", "crm_consumer_group_lag_events"),
                          ("Rebuild progress", "crm_rebuild_progress"),
                          ("Stopped read models", "crm_read_model_stopped")]:
        assert any(metric in expr for expr in by_title[title]), title
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in found["panels"])
