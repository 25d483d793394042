"""Every CLI lookup of a customer, deal or campaign takes its UUID, `source:id`, or the bare id when unique;
an ambiguous bare id lists the candidates, an unknown one exits 1."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.main import app
from services.commands import OpenDeal, PlanCampaign, RegisterCustomer
from tests.conftest import at

runner = CliRunner()


@pytest.fixture
def ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "200")
    with crm_application() as crm:
        crm.ensure_default_pipelines(Meta())
        customer = crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", source="hubspot",
                                                          external_id="501"), at(0))
        found = {"customer": str(customer)}
        for source in ("salesforce", "hubspot"):
            found[source] = str(crm.open_deal(OpenDeal(customer, "云服务采购", "1000", source=source,
                                                       external_id="1001"), at(1)))
        found["unique"] = str(crm.open_deal(OpenDeal(customer, "门店系统", "5000", source="salesforce",
                                                     external_id="006Dn00000AbCdE"), at(2)))
        found["campaign"] = str(crm.plan_campaign(PlanCampaign("春季活动", "event", "1000", source="hubspot",
                                                               external_id="C-1"), at(0)))
    assert runner.invoke(app, ["projections", "catch-up"]).exit_code == 0
    return found


def test_deal_history_takes_the_uuid_source_id_or_the_unique_bare_id(ids: dict[str, str]) -> None:
    for name in (ids["unique"], "salesforce:006Dn00000AbCdE", "006Dn00000AbCdE"):
        result = runner.invoke(app, ["deal", "history", name])
        assert result.exit_code == 0, result.output
        assert f"Deal {ids['unique']} (salesforce:006Dn00000AbCdE) — 门店系统" in result.output


def test_an_ambiguous_bare_id_exits_1_listing_the_candidates(ids: dict[str, str]) -> None:
    result = runner.invoke(app, ["deal", "history", "1001"])
    assert result.exit_code == 1
    assert "'1001' names 2 deals" in result.output
    assert f"hubspot:1001 ({ids['hubspot']})" in result.output
    assert f"salesforce:1001 ({ids['salesforce']})" in result.output
    assert runner.invoke(app, ["deal", "history", "hubspot:1001"]).exit_code == 0


def test_an_unknown_id_exits_1(ids: dict[str, str]) -> None:
    for name in ("9999", "zendesk:9999"):
        result = runner.invoke(app, ["deal", "history", name])
        assert result.exit_code == 1, result.output
    assert "no deal with id or external id '9999'" in runner.invoke(app, ["deal", "history", "9999"]).output


def test_the_timeline_takes_an_external_id_and_shows_the_external_ids(ids: dict[str, str]) -> None:
    result = runner.invoke(app, ["customer", "timeline", "hubspot:501", "--json"])
    assert result.exit_code == 0, result.output
    answer = orjson.loads(result.stdout)
    assert answer["customer_id"] == ids["customer"] and answer["external_id"] == "hubspot:501"
    assert "salesforce:006Dn00000AbCdE" in [e["subject_external_id"] for e in answer["entries"]]
    table = runner.invoke(app, ["customer", "timeline", "501"])
    assert table.exit_code == 0 and f"Customer {ids['customer']} (hubspot:501)" in table.output


def test_segments_history_forget_and_the_funnels_campaign_take_external_ids(ids: dict[str, str]) -> None:
    assert runner.invoke(app, ["funnel", "--campaign", "C-1", "--json"]).exit_code == 0
    assert runner.invoke(app, ["funnel", "--campaign", "nope"]).exit_code == 1
    segments = runner.invoke(app, ["segments", "history", "501"])
    assert "no customer with id or external id" not in segments.output
    forgotten = runner.invoke(app, ["customer", "forget", "hubspot:501"])
    assert forgotten.exit_code == 0, forgotten.output
    assert f"Customer {ids['customer']} forgotten" in forgotten.output
    # The external id is an identifier, not personal data: the forgotten customer is still found by it.
    assert runner.invoke(app, ["customer", "timeline", "501"]).exit_code == 0
