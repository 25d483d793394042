"""A query reads only what a projector applied, and waits only for the read models its answer needs: a
funnel needs no segments unless it filters by segment (the first `crm funnel` after importing 8,800 deals
waited 773 s for a segments rebuild, when queries still caught read models up themselves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from gateways.http.app import create_app
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at, catch_up
from tests.unit.gateways.http.conftest import auth, registry

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An SQLite log with a customer whose deal was won; no read model built yet."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="华为"), at(0))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "增购", "300000", owner="李娜"), at(1))), at(2))
    crm.close()
    return url


def positions(url: str) -> dict[str, int]:
    """Each read model's position in the log (a read model never caught up has none)."""
    store = ReadModelStore(database_from_url(url))
    try:
        if not store.query("SELECT 1 FROM sqlite_master WHERE name = 'projection_positions'"):
            return {}
        return dict(store.query("SELECT name, position FROM projection_positions"))
    finally:
        store.close()


def funnel(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["funnel", "--as-of", "2026-03-10", "--json", *args], env={"CRM_DATABASE_URL": url})
    return result.exit_code, result.stdout, result.stderr


def test_crm_funnel_needs_the_segments_only_to_filter_by_segment_and_builds_none(url: str) -> None:
    catch_up(url, "funnel", "rates", "external_ids")  # the rates convert its values, the external ids name stuck items
    code, out, err = funnel(url)
    assert code == 0 and json.loads(out)["won"] == 1 and err == ""  # fresh: segments are not asked
    assert set(positions(url)) == {"funnel", "rates", "external_ids"}

    code, out, err = funnel(url, "--segment", "high_value")
    assert code == 1 and "segments not built yet: run `crm projections catch-up`" in err
    assert set(positions(url)) == {"funnel", "rates", "external_ids"}  # the query built nothing

    catch_up(url, "segments")
    assert json.loads(funnel(url, "--segment", "high_value")[1])["won"] == 1


def test_crm_funnel_replay_folds_the_log_and_waits_for_no_read_model(url: str) -> None:
    assert json.loads(funnel(url, "--replay", "--segment", "high_value")[1])["won"] == 1
    assert positions(url) == {}


def test_the_http_funnel_reports_the_segments_freshness_only_to_filter_by_segment(url: str) -> None:
    with TestClient(create_app(database_from_url(url), registry())) as client:
        crm, store = client.app.state.crm, client.app.state.store  # type: ignore[attr-defined]
        projector_for(crm, store, ["funnel", "rates", "external_ids"]).catch_up()  # the segments stay at 0
        head = str(crm.event_count())
        for path in ("/funnel", "/funnel/flow", "/funnel/compare"):
            response = client.get(path, headers=auth("analyst"), params={
                "as_of": "2026-03-10T00:00:00Z", "start": "2026-03-01T00:00:00Z", "end": "2026-03-10T00:00:00Z",
                "first": "2026-03-01T00:00:00Z", "second": "2026-03-10T00:00:00Z"})
            assert response.status_code == 200, response.text
            assert response.headers["X-Read-Model-Position"] == response.headers["X-Log-Position"] == head

        response = client.get("/funnel", headers=auth("analyst"),
                              params={"as_of": "2026-03-10T00:00:00Z", "segment": "high_value"})

        assert response.status_code == 200, response.text
        assert (response.headers["X-Read-Model-Position"], response.headers["X-Log-Position"]) == ("0", head)
    assert positions(url)["segments"] == 0  # the query caught nothing up
