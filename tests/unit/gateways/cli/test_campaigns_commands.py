"""`crm campaigns` on an SQLite log: tables, JSON, the channel filter, catching up, and refusals."""

import csv
import io
import json
from pathlib import Path
from uuid import UUID

import pytest
import typer
from typer.testing import CliRunner, Result

from gateways.cli.campaigns_commands import campaigns
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ContactLead, ConvertLead, LaunchCampaign, PlanCampaign,
                               QualifyLead, RecordCost, RecordResponse, WinDeal)
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner()
app = typer.Typer()
app.command()(campaigns)


@app.callback()
def crm() -> None:
    """Stands in for the `crm` app, so the command is invoked as `campaigns`."""


@pytest.fixture
def log_url(tmp_path: Path) -> str:
    """W (event, cost 3000) brings a lead converted into a deal of 1000 won on day 6; S (search ads) costs 2000."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    crm_app = CrmApplication(database_from_url(url))
    crm_app.ensure_default_pipelines(at(-30, "setup"))
    w = crm_app.plan_campaign(PlanCampaign("春季展会", "event", "10000"), at(0))
    s = crm_app.plan_campaign(PlanCampaign("搜索推广", "search_ads", "5000"), at(0))
    crm_app.launch_campaign(LaunchCampaign(w), at(1))
    crm_app.record_cost(RecordCost(s, "2000"), at(1))
    crm_app.record_cost(RecordCost(w, "3000"), at(2))
    lead = crm_app.capture_lead(CaptureLead("王五", "华东", "制造业", "event", campaign_id=w), at(2))
    crm_app.record_response(RecordResponse(w, "click", lead_id=lead), at(2))
    crm_app.assign_lead(AssignLead(lead, "李娜", "manual"), at(2))
    crm_app.contact_lead(ContactLead(lead, "phone", ""), at(2))
    crm_app.qualify_lead(QualifyLead(lead, ""), at(3))
    _, deal = crm_app.convert_lead(ConvertLead(lead, "采购", "1000", "CNY"), at(4))
    crm_app.win_deal(WinDeal(deal), at(6))
    crm_app.close()
    catch_up(url)
    return url


def run(url: str, *args: str) -> Result:
    return runner.invoke(app, ["campaigns", *args], env={"CRM_DATABASE_URL": url, "COLUMNS": "250"})


def test_json_reports_each_campaign_and_channel_as_of_the_instant(log_url: str) -> None:
    result = run(log_url, "--as-of", "2026-03-11T09:00", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    spring = next(row for row in report["campaigns"] if row["name"] == "春季展会")
    assert (spring["name"], spring["status"], spring["totals"]["cost_cents"]) == ("春季展会", "launched", 300000)
    assert (spring["totals"]["won_revenue_cents"], spring["totals"]["cac_cents"]) == (100000, 300000)
    assert [(row["channel"], row["totals"]["cost_cents"]) for row in report["channels"]] == [
        ("event", 300000), ("search_ads", 200000)]


def test_tables_show_campaigns_channels_attribution_and_lifetime_value(log_url: str) -> None:
    result = run(log_url, "--as-of", "2026-03-11")

    assert result.exit_code == 0, result.output
    for title in ("Campaigns as of 2026-03-11 00:00 UTC", "Channels", "Attribution of won revenue",
                  "Customer lifetime value by channel"):
        assert title in result.output
    assert "-66.7%" in result.output  # W's ROI: (1000 − 3000) / 3000
    assert "100.0%" in result.output  # event: its one lead was qualified, converted, and its deal won


def test_channel_option_keeps_only_that_channel(log_url: str) -> None:
    result = run(log_url, "--as-of", "2026-03-11", "--channel", "search_ads", "--json")

    report = json.loads(result.output)
    assert [row["name"] for row in report["campaigns"]] == ["搜索推广"]
    assert report["clv_by_channel"] == []  # the one customer came through the event channel


def test_each_run_reports_new_events_once_a_projector_applied_them(log_url: str) -> None:
    crm_app = CrmApplication(database_from_url(log_url))
    before = json.loads(run(log_url, "--json").stdout)
    spring = next(row for row in before["campaigns"] if row["name"] == "春季展会")
    crm_app.record_cost(RecordCost(UUID(spring["campaign_id"]), "500"), at(7))
    crm_app.close()

    stale = run(log_url, "--json")
    catch_up(log_url)
    report = json.loads(run(log_url, "--json").output)

    assert json.loads(stale.stdout)["campaigns"] == before["campaigns"]  # the report caught nothing up
    assert "(1 behind): run `crm projections catch-up`" in stale.stderr
    assert {row["name"]: row["totals"]["cost_cents"] for row in report["campaigns"]} == {
        "春季展会": 350000, "搜索推广": 200000}


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--channel", "tv", "unknown acquisition channel 'tv'"),
    ("--as-of", "yesterday", "'yesterday' is not an ISO 8601 date"),
])
def test_bad_input_exits_non_zero_with_a_message(log_url: str, option: str, value: str, message: str) -> None:
    result = run(log_url, option, value)

    assert result.exit_code == 2
    assert message in result.output


def test_csv_gives_one_table_per_call_and_a_win_rate_without_losses_is_missing(log_url: str) -> None:
    campaigns_csv = run(log_url, "--as-of", "2026-03-11T09:00", "--csv")
    channels_csv = run(log_url, "--as-of", "2026-03-11T09:00", "--csv", "--table", "channels")
    text = run(log_url, "--as-of", "2026-03-11T09:00")

    assert campaigns_csv.exit_code == 0, campaigns_csv.output
    rows = list(csv.DictReader(io.StringIO(campaigns_csv.stdout)))
    spring = next(row for row in rows if row["name"] == "春季展会")
    assert len(rows) == 2 and spring["totals.cost_cents"] == "300000" and spring["totals.won"] == "1"
    event = next(row for row in csv.DictReader(io.StringIO(channels_csv.stdout)) if row["channel"] == "event")
    assert (event["deal_to_won"], event["totals.lost"]) == ("", "0")  # one deal won, none lost: no 100 %
    assert event["deal_to_won_note"].startswith("no lost items recorded")
    assert "n/a (no lost items recorded)" in text.output


def test_by_region_gives_each_regions_leads_and_deals_and_no_cost_split(log_url: str) -> None:
    plain = json.loads(run(log_url, "--as-of", "2026-03-11T09:00", "--json").stdout)
    grouped = run(log_url, "--as-of", "2026-03-11T09:00", "--by", "region", "--json")
    as_csv = run(log_url, "--as-of", "2026-03-11T09:00", "--by", "industry", "--csv")
    text = run(log_url, "--as-of", "2026-03-11T09:00", "--by", "region")

    assert grouped.exit_code == 0, grouped.output
    report = json.loads(grouped.stdout)
    assert [g["key"] for g in report["groups"]] == [{"region": "华东"}]
    totals = {row["name"]: row["totals"] for row in report["groups"][0]["campaigns"]}
    expected = {row["name"]: row["totals"] for row in plain["campaigns"]}
    for name in ("leads", "qualified", "deals", "won", "won_revenue_cents"):
        assert totals["春季展会"][name] == expected["春季展会"][name]
    assert (totals["春季展会"]["cost_cents"], totals["春季展会"]["roi"], totals["春季展会"]["cac_cents"]) == (None, None, None)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    spring = next(row for row in rows if row["name"] == "春季展会")
    assert (spring["key.industry"], spring["totals.won"], spring["totals.cost_cents"]) == ("制造业", "1", "")
    assert spring["totals.cost_note"] == "cost is recorded per campaign, not per industry"
    assert text.exit_code == 0 and "华东" in text.output and "cost is recorded per campaign, not per region" in text.output


@pytest.mark.parametrize(("args", "message"), [
    (("--by", "Bad name"), "property name"), (("--by", "region", "--channel", "event"), "leave out --channel"),
    (("--by", "region", "--property", "product=x"), "leave out --property")])
def test_a_bad_by_exits_non_zero_with_a_message(log_url: str, args: tuple[str, ...], message: str) -> None:
    result = run(log_url, *args)

    assert result.exit_code != 0
    assert message in result.output


def test_a_property_filter_gives_the_group_of_that_value(log_url: str) -> None:
    grouped = json.loads(run(log_url, "--as-of", "2026-03-11T09:00", "--by", "product", "--json").stdout)
    filtered = run(log_url, "--as-of", "2026-03-11T09:00", "--property", "product=软件", "--json")
    text = run(log_url, "--as-of", "2026-03-11T09:00", "--property", "product=软件")

    assert filtered.exit_code == 0, filtered.output
    report = json.loads(filtered.stdout)
    assert [g["key"] for g in grouped["groups"]] == [{"product": "unknown"}]  # nobody has a product
    assert report["properties"] == {"product": "软件"}
    assert all(row["totals"]["leads"] == 0 and row["totals"]["cost_cents"] is None for row in report["campaigns"])
    assert text.exit_code == 0 and "plain report" in text.output
