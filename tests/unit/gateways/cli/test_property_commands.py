"""`crm deal|lead|customer set-property` and `crm funnel --by/--cohort/--property/--periods` on an SQLite log."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from domain.customer import Customer
from domain.deal import Deal
from domain.funnel_rules import NO_DECIDED_ITEMS, NO_LOSSES_RECORDED
from domain.lead import Lead
from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import CaptureLead, OpenDeal, RecordExchangeRate, RegisterCustomer, WinDeal
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner()


def crm(url: str, *args: str) -> object:
    return runner.invoke(app, list(args), env={"CRM_DATABASE_URL": url, "COLUMNS": "200"})


@pytest.fixture
def log(tmp_path: Path) -> tuple[str, dict[str, UUID]]:
    """A customer with two deals (李娜's opened in January and won in February, 王伟's opened in April) and a lead."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    application = CrmApplication(database_from_url(url))
    application.ensure_default_pipelines(at(-30, "setup"))
    customer = application.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    first = application.open_deal(OpenDeal(customer, "A", "100", owner="李娜"), at(0))
    application.win_deal(WinDeal(first), at(20))
    second = application.open_deal(OpenDeal(customer, "B", "200", owner="王伟", source="salesforce",
                                            external_id="006Dn00000AbCdE"), at(40))
    lead = application.capture_lead(CaptureLead("王芳", "华东", "互联网", "event"), at(1))
    ids = {"customer": customer, "first": first, "second": second, "lead": lead}
    application.close()
    return url, ids


def _state(url: str, kind: type, record: UUID) -> dict[str, str]:
    application = CrmApplication(database_from_url(url))
    try:
        return application.get(kind, record).properties
    finally:
        application.close()


def test_set_property_sets_and_removes_properties_of_deals_leads_and_customers(log) -> None:
    url, ids = log

    deal = crm(url, "deal", "set-property", str(ids["first"]), "product=GTX Pro", "team=华东一组")
    removed = crm(url, "deal", "set-property", str(ids["first"]), "team=", "--expected-version", "3")
    lead = crm(url, "lead", "set-property", str(ids["lead"]), "product=MG")
    customer = crm(url, "customer", "set-property", str(ids["customer"]), "account_size=大型")

    for result in (deal, removed, lead, customer):
        assert result.exit_code == 0, result.output
    assert "team removed" in removed.output
    assert _state(url, Deal, ids["first"]) == {"product": "GTX Pro"}
    assert _state(url, Lead, ids["lead"]) == {"product": "MG"}
    assert _state(url, Customer, ids["customer"]) == {"account_size": "大型"}


def test_set_property_finds_a_record_by_its_external_id(log) -> None:
    url, ids = log
    catch_up(url, "external_ids")

    result = crm(url, "deal", "set-property", "salesforce:006Dn00000AbCdE", "product=GTX")

    assert result.exit_code == 0, result.output
    assert _state(url, Deal, ids["second"]) == {"product": "GTX"}


@pytest.mark.parametrize("args, says", [
    (["team"], "is not name=value"),
    (["manager=li@example.com"], "must not hold an e-mail address"),
    (["region=华北"], "is reserved"),
    (["product=GTX", "--expected-version", "1"], "version"),
])
def test_set_property_refuses_bad_input_with_a_message_and_writes_nothing(log, args, says) -> None:
    url, ids = log

    result = crm(url, "deal", "set-property", str(ids["first"]), *args)

    assert result.exit_code != 0
    assert says in result.output
    assert _state(url, Deal, ids["first"]) == {}


def test_funnel_by_owner_and_cohort_as_json(log) -> None:
    url, ids = log
    crm(url, "customer", "set-property", str(ids["customer"]), "account_size=大型")
    crm(url, "deal", "set-property", str(ids["second"]), "product=GTX")
    catch_up(url, "funnel", "rates", "external_ids")

    by_owner = json.loads(crm(url, "funnel", "--by", "owner", "--json").output)
    by_cohort = json.loads(crm(url, "funnel", "--by", "product", "--by", "account_size", "--cohort", "quarter",
                               "--json").output)
    filtered = json.loads(crm(url, "funnel", "--property", "product=GTX", "--json").output)
    table = crm(url, "funnel", "--by", "product")

    assert [(g["key"], g["open_items"], g["won"]) for g in by_owner["groups"]] == [
        ({"owner": "李娜"}, 0, 1), ({"owner": "王伟"}, 1, 0)]
    assert [g["key"] for g in by_cohort["groups"]] == [
        {"product": "GTX", "account_size": "大型", "cohort": "2026-Q2"},
        {"product": None, "account_size": "大型", "cohort": "2026-Q1"}]
    assert (filtered["open_items"], filtered["won"]) == (1, 0)
    assert table.exit_code == 0 and "Funnel by product" in table.output and "(none)" in table.output


def _csv(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(output.lstrip("\ufeff").splitlines()))


def test_funnel_by_owner_as_csv_tables_with_honest_rates_and_capped_stuck_lists(log) -> None:
    url, _ = log
    catch_up(url, "funnel", "rates", "external_ids")
    args = ("funnel", "--by", "owner", "--stuck-days", "0")

    groups = _csv(crm(url, *args, "--csv").output)
    stages = _csv(crm(url, *args, "--csv", "--table", "stages").output)
    stuck = _csv(crm(url, *args, "--csv", "--table", "stuck", "--stuck-limit", "1").output)
    capped = json.loads(crm(url, *args, "--stuck-limit", "0", "--json").output)
    bom = crm(url, *args, "--csv", "--bom").output
    unknown = crm(url, *args, "--csv", "--table", "nope")

    assert [(g["key.owner"], g["won"], g["win_rate"], g["win_rate_note"], g["stuck_total"]) for g in groups] == [
        ("李娜", "1", "", NO_LOSSES_RECORDED, "0"), ("王伟", "0", "", NO_DECIDED_ITEMS, "1")]
    assert {"key.owner", "stage", "reached", "advanced", "lost", "still_open", "conversion_note"} <= set(stages[0])
    assert len(stages) == 2 * len([row for row in stages if row["key.owner"] == "李娜"])
    assert [(row["key.owner"], row["owner"]) for row in stuck] == [("王伟", "王伟")]
    assert [(g["stuck"], g["stuck_total"]) for g in capped["groups"]] == [([], 0), ([], 1)]
    assert bom.startswith("\ufeff") and unknown.exit_code == 2 and "stages" in unknown.output


def test_funnel_periods_as_csv_with_and_without_by(log) -> None:
    url, _ = log
    catch_up(url, "funnel", "rates", "external_ids")

    plain = _csv(crm(url, "funnel", "--periods", "month", "--as-of", "2026-05-01T00:00:00Z", "--csv").output)
    by_owner = _csv(crm(url, "funnel", "--periods", "month", "--by", "owner", "--as-of", "2026-05-01T00:00:00Z",
                        "--csv", "--table", "periods").output)

    assert [(p["period"], p["won"], p["win_rate"], p["win_rate_note"]) for p in plain] == [
        ("2026-03", "1", "", NO_LOSSES_RECORDED), ("2026-04", "0", "", NO_DECIDED_ITEMS)]
    assert [(p["key.owner"], p["period"], p["won"]) for p in by_owner] == [("李娜", "2026-03", "1"),
                                                                            ("李娜", "2026-04", "0")]


def test_funnel_periods_give_win_rate_and_cycle_per_month(log) -> None:
    url, _ = log
    catch_up(url, "funnel", "rates", "external_ids")

    result = crm(url, "funnel", "--periods", "month", "--as-of", "2026-05-01T00:00:00Z", "--json")

    assert result.exit_code == 0, result.output
    assert [(p["period"], p["won"], p["win_rate"], p["win_rate_note"], p["average_cycle_days"]) for p in
            json.loads(result.output)["periods"]] == [("2026-03", 1, None, NO_LOSSES_RECORDED, 20.0),
                                                      ("2026-04", 0, None, NO_DECIDED_ITEMS, None)]
    assert "Decided per period" in crm(url, "funnel", "--periods", "quarter", "--since", "2026-01-01").output
    by_owner = json.loads(crm(url, "funnel", "--periods", "quarter", "--by", "owner", "--as-of", "2026-05-01",
                              "--json").output)
    assert [(g["key"], [p["won"] for p in g["periods"]]) for g in by_owner["groups"]] == [({"owner": "李娜"}, [1, 0])]
    assert "李娜" in crm(url, "funnel", "--periods", "month", "--by", "owner").output


@pytest.mark.parametrize("args, says", [
    (["--by", "Owner"], "lower-case"),
    (["--cohort", "fortnight"], "unknown period"),
    (["--periods", "month", "--replay"], "go with --as-of only"),
    (["--property", "product="], "needs a value"),
    (["--periods", "month", "--cohort", "month"], "one or the other"),
    (["--periods", "month", "--tz", "Mars/Olympus"], "not a time zone"),
])
def test_funnel_refuses_bad_group_bys_with_a_message(log, args, says) -> None:
    url, _ = log
    catch_up(url, "funnel", "rates", "external_ids")

    result = crm(url, "funnel", *args)

    assert result.exit_code != 0
    assert says in result.output


def test_funnel_by_and_periods_convert_as_the_plain_funnel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    application = CrmApplication(database_from_url(url))
    application.ensure_default_pipelines(at(-30, "setup"))
    customer = application.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    usd = application.open_deal(OpenDeal(customer, "A", "100", currency="USD", owner="李娜"), at(0))
    application.win_deal(WinDeal(usd), at(20))
    application.open_deal(OpenDeal(customer, "B", "50", currency="BRL", owner="王伟"), at(1))
    application.record_exchange_rate(RecordExchangeRate("USD", "7.1", date(2026, 3, 1)), at(0))
    application.close()
    catch_up(url, "funnel", "rates", "external_ids")

    plain = json.loads(crm(url, "funnel", "--as-of", "2026-05-01", "--json").output)
    by_owner = json.loads(crm(url, "funnel", "--by", "owner", "--as-of", "2026-05-01", "--json").output)
    periods = json.loads(crm(url, "funnel", "--periods", "month", "--by", "owner", "--as-of", "2026-05-01",
                             "--json").output)
    table = crm(url, "funnel", "--by", "owner", "--as-of", "2026-05-01").output

    assert (by_owner["currency"], by_owner["rates"], by_owner["unconverted"]) == ("CNY", plain["rates"], {"BRL": 5000})
    assert [(g["key"]["owner"], g["won_value_cents"], g["unconverted"]) for g in by_owner["groups"]] == [
        ("李娜", 71_000, {}), ("王伟", 0, {"BRL": 5000})]
    assert periods["rates"] == plain["rates"] and periods["currency"] == "CNY"
    assert [(g["key"], [p["won_value_cents"] for p in g["periods"]]) for g in periods["groups"]] == [
        ({"owner": "李娜"}, [71_000, 0])]
    assert "Amounts in CNY" in table and "BRL 50.00" in table and "710" in table
