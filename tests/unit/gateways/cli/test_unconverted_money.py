"""Every report's CSV with USD deals and no rate into CNY: each converted amount says its currency, and the
USD that could not be converted appears with its currency (in its row, or in the `unconverted` table),
never as a bare 0 (issue 12's review, P1 6); a stage no deal entered has no conversion (P2 14); the CLI's
stuck list prints each amount in its own currency and the deal's external id (P2 15).

One log, read through the `crm` commands as a user would, CSV parsed back with the csv module.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from domain.funnel_rules import NO_ITEM_ENTERED
from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import ChangeStage, LoseDeal, OpenDeal, PlanCampaign, RecordCost, RegisterCustomer, WinDeal
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner()
AS_OF = "2026-04-30T09:00"  # day 60: the USD deal in proposal since day 3 is stuck (> 30 days)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A won 12,500 USD deal that went from lead straight to won (of a USD campaign costing 300 USD); an open
    5,000 USD deal known as salesforce:006B that jumped from lead to proposal; a lost 1,000 CNY deal."""
    url = f"sqlite:///{tmp_path_factory.mktemp('money') / 'crm.sqlite3'}"
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    customer = crm.register_customer(RegisterCustomer("Acme", "华东", "制造业", "web"), at(0))
    campaign = crm.plan_campaign(PlanCampaign("Expo", "event", "1000", currency="USD"), at(0))
    crm.record_cost(RecordCost(campaign, "300"), at(0.5))
    won = crm.open_deal(OpenDeal(customer, "Big", "12500", currency="USD", owner="李娜", campaign_id=campaign), at(1))
    crm.win_deal(WinDeal(won), at(10))
    stuck = crm.open_deal(OpenDeal(customer, "Pilot", "5000", currency="USD", owner="李娜", source="salesforce",
                                   external_id="006B"), at(2))
    crm.change_stage(ChangeStage(stuck, "proposal"), at(3))
    lost = crm.open_deal(OpenDeal(customer, "Small", "1000", owner="李娜"), at(2))
    crm.lose_deal(LoseDeal(lost), at(4))
    crm.close()
    catch_up(url)
    return url


def _crm(url: str, *args: str) -> Result:
    result = runner.invoke(app, list(args), env={"CRM_DATABASE_URL": url, "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result


def _table(url: str, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_crm(url, *args, "--as-of", AS_OF, "--csv").stdout)))


def test_the_funnel_summary_says_its_currency_and_keeps_the_won_usd(url: str) -> None:
    [summary] = _table(url, "funnel", "--table", "summary")

    assert (summary["currency"], summary["won_value_cents"], summary["won_unconverted.USD"]) == ("CNY", "0", "1250000")
    assert summary["unconverted.USD"] == "1750000"  # the won 12,500 and the open 5,000
    assert _table(url, "funnel", "--table", "unconverted") == [{"currency": "USD", "cents": "1750000"}]


def test_each_stage_row_says_its_currency_and_keeps_its_usd(url: str) -> None:
    stages = {row["stage"]: row for row in _table(url, "funnel")}

    assert {row["currency"] for row in stages.values()} == {"CNY"}
    assert (stages["proposal"]["value_cents"], stages["proposal"]["unconverted.USD"]) == ("0", "500000")
    assert stages["lead"]["unconverted.USD"] == ""


def test_weeks_and_comparisons_say_their_currency_too(url: str) -> None:
    weeks = _table(url, "funnel", "--weekly", "2026-03-12", "2026-03-22")
    compared = _table(url, "funnel", "--compare", "2026-03-05", AS_OF)

    assert [(w["currency"], w["won_unconverted.USD"]) for w in weeks] == [("CNY", "1250000"), ("CNY", "1250000")]
    assert {row["currency"] for row in compared} == {"CNY"}
    assert next(r for r in compared if r["stage"] == "proposal")["unconverted_second.USD"] == "500000"


def test_a_stage_no_deal_entered_has_no_conversion_but_says_why(url: str) -> None:
    stages = {row["stage"]: row for row in _table(url, "funnel")}

    for skipped in ("first_contact", "needs_analysis", "negotiation", "contract_signed"):
        assert stages[skipped]["conversion_to_next"] == stages[skipped]["drop_off"] == ""
        assert stages[skipped]["conversion_note"].startswith(NO_ITEM_ENTERED)
    assert stages["first_contact"]["reached"] == "2"  # still reached (skipped): the counts keep their meaning
    assert float(stages["lead"]["conversion_to_next"]) == pytest.approx(2 / 3)  # entered: a rate as before
    text = _crm(url, "funnel", "--as-of", AS_OF).output
    assert "n/a (no item entered it)" in text


def test_the_stuck_list_shows_the_amount_in_its_currency_and_the_external_id(url: str) -> None:
    text = _crm(url, "funnel", "--as-of", AS_OF).output
    [row] = _table(url, "funnel", "--table", "stuck")

    assert "USD 5,000" in text and "salesforce:006B" in text and "Amount (its currency)" in text
    assert (row["currency"], row["amount_cents"], row["external_id"]) == ("USD", "500000", "salesforce:006B")


def test_campaign_tables_say_their_currency_and_list_the_usd_apart(url: str) -> None:
    [campaign] = _table(url, "campaigns")
    attribution = _table(url, "campaigns", "--table", "attribution")
    apart = _table(url, "campaigns", "--table", "unconverted")

    assert (campaign["currency"], campaign["totals.currency"]) == ("USD", "CNY")  # budget's, totals'
    assert (campaign["totals.won_revenue_cents"], campaign["totals.unconverted.USD"]) == ("0", "1280000")
    assert {row["currency"] for row in attribution} == {"CNY"}
    assert apart == [{"currency": "USD", "cents": "1280000"}]  # cost 300 and won revenue 12,500
    for name in ("channels", "clv_by_channel", "clv_by_first_touch"):
        rows = _table(url, "campaigns", "--table", name)
        assert rows and all(row.get("currency", row.get("totals.currency")) == "CNY" for row in rows), name


def test_segment_tiers_and_members_say_cny_and_keep_the_usd_won(url: str) -> None:
    tiers = _table(url, "segments")
    [tier] = [row for row in tiers if row["customers"] == "1"]
    [member] = _table(url, "segments", "--tier", tier["tier"])

    assert {row["currency"] for row in tiers} == {"CNY"}
    assert (tier["value_cents"], tier["unconverted.USD"]) == ("0", "1250000")
    assert (member["currency"], member["monetary_cents"], member["unconverted.USD"]) == ("CNY", "0", "1250000")
    assert "Won without a rate into CNY" in _crm(url, "segments", "--as-of", AS_OF).output


def test_an_empty_unconverted_table_still_has_its_header(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.close()
    catch_up(url)

    assert _crm(url, "funnel", "--csv", "--table", "unconverted").stdout.splitlines() == ["currency,cents"]
