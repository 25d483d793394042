"""`crm segments` on an SQLite log: tier counts, a tier's members, a customer's history, and refusals."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from uuid import UUID

import orjson
import pytest
import typer
from typer.testing import CliRunner

from gateways.cli.segments_commands import segments_app
from services.application import CrmApplication
from services.commands import ChangeCustomerProperties, OpenDeal, RegisterCustomer, WinDeal
from services.settings import database_from_url
from tests.conftest import at, catch_up

BUYER, PROSPECT = UUID("00000000-0000-4000-8000-0000000000b1"), UUID("00000000-0000-4000-8000-0000000000b2")
runner = CliRunner()
app = typer.Typer()
app.add_typer(segments_app, name="segments")


@pytest.fixture(autouse=True)
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BUYER wins 300,000 CNY on 11 March 2026; PROSPECT has a deal open from 3 March."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", id=BUYER, company="某公司"), at(0))
    crm.register_customer(RegisterCustomer("李四", "华南", "零售", "event", id=PROSPECT, company="另一公司"), at(0))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(BUYER, "一期", "300000", owner="李娜"), at(1))), at(10))
    crm.open_deal(OpenDeal(PROSPECT, "试用", "20000", owner="王伟"), at(2))
    crm.close()
    catch_up(url)


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)


def _cells(output: str) -> list[list[str]]:
    """The cells of each body row of a rich table."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if "│" in line]


def test_tier_counts_as_of_an_instant() -> None:
    data = _json(["segments", "--as-of", "2026-03-20", "--json"])

    assert [(t["tier"], t["customers"], t["value_cents"]) for t in data["tiers"]] == [
        ("high_value", 1, 30_000_000), ("potential", 1, 0), ("ordinary", 0, 0)]


def test_members_of_a_tier_as_json() -> None:
    data = _json(["segments", "--as-of", "2026-03-20", "--tier", "high_value", "--json"])

    assert [(m["customer_id"], m["recency"], m["frequency"], m["monetary"]) for m in data["members"]] == [
        (str(BUYER), 5, 1, 3)]
    assert data["members"][0]["last_purchase_at"] == "2026-03-11T09:00:00+00:00"


def test_members_table() -> None:
    result = runner.invoke(app, ["segments", "--as-of", "2026-03-05", "--tier", "potential"])

    assert result.exit_code == 0, result.output
    assert "potential customers as of 2026-03-05 00:00 UTC" in result.output
    assert str(BUYER) in result.output and str(PROSPECT) in result.output  # both had an open deal then


def test_tier_counts_table() -> None:
    result = runner.invoke(app, ["segments", "--as-of", "2026-08-01"])

    assert result.exit_code == 0, result.output
    assert "Customer segments as of 2026-08-01 00:00 UTC" in result.output
    assert _cells(result.output) == [["high_value", "0", "0", "–", "–", "–"],
                                     ["potential", "2", "300,000", "1.50", "0.50", "1.50"],  # R 3 and 0
                                     ["ordinary", "0", "0", "–", "–", "–"]]


def test_history_of_a_customer() -> None:
    result = runner.invoke(app, ["segments", "history", str(BUYER), "--as-of", "2026-07-01"])

    assert result.exit_code == 0, result.output
    assert _cells(result.output) == [
        ["ordinary", "2026-03-01 09:00", "2026-03-02 09:00"],
        ["potential", "2026-03-02 09:00", "2026-03-11 09:00"],  # the deal was open
        ["high_value", "2026-03-11 09:00", "2026-06-09 09:00"],  # until 90 days after the purchase
        ["potential", "2026-06-09 09:00", "(still there)"],
    ]


def test_history_as_json() -> None:
    data = _json(["segments", "history", str(PROSPECT), "--as-of", "2026-03-05", "--json"])

    assert data["history"] == [
        {"tier": "ordinary", "entered_at": "2026-03-01T09:00:00+00:00", "left_at": "2026-03-03T09:00:00+00:00"},
        {"tier": "potential", "entered_at": "2026-03-03T09:00:00+00:00", "left_at": None}]


def test_an_unknown_tier_is_refused() -> None:
    result = runner.invoke(app, ["segments", "--tier", "vip"])

    assert result.exit_code != 0
    assert "unknown tier 'vip'" in result.output


def test_the_history_of_an_unknown_customer_is_refused() -> None:
    result = runner.invoke(app, ["segments", "history", "00000000-0000-4000-8000-000000000000"])

    assert result.exit_code == 1
    assert "customer 00000000-0000-4000-8000-000000000000 was in no segment" in result.output


def test_tiers_members_and_history_as_csv(log: None) -> None:
    counts = runner.invoke(app, ["segments", "--as-of", "2026-03-20", "--csv"])
    tiers = list(csv.DictReader(io.StringIO(counts.stdout)))
    tier = "high_value"
    members = runner.invoke(app, ["segments", "--as-of", "2026-03-20", "--tier", tier, "--csv"])
    history = runner.invoke(app, ["segments", "history", str(BUYER), "--as-of", "2026-03-20", "--csv"])

    assert sum(int(row["customers"]) for row in tiers) == 2
    assert [row["customer_id"] for row in csv.DictReader(io.StringIO(members.stdout))] == [str(BUYER)]
    assert [row["tier"] for row in csv.DictReader(io.StringIO(history.stdout))][-1] == tier


def test_a_page_of_members_says_the_total(log: None) -> None:
    past_the_end = _json(["segments", "--as-of", "2026-03-20", "--tier", "high_value", "--json", "--offset", "5"])
    first = _json(["segments", "--as-of", "2026-03-20", "--tier", "high_value", "--json", "--limit", "1"])

    assert (past_the_end["members"], past_the_end["total"], past_the_end["offset"]) == ([], 1, 5)
    assert [m["customer_id"] for m in first["members"]] == [str(BUYER)] and first["total"] == 1


def test_tier_counts_by_region_add_up_and_each_equals_the_filtered_report() -> None:
    plain = _json(["segments", "--as-of", "2026-03-20", "--json"])["tiers"]
    grouped = _json(["segments", "--as-of", "2026-03-20", "--by", "region", "--json"])

    assert [g["key"] for g in grouped["groups"]] == [{"region": "华东"}, {"region": "华南"}]
    assert [sum(g["tiers"][i]["customers"] for g in grouped["groups"]) for i in range(3)] == [
        t["customers"] for t in plain]
    for group in grouped["groups"]:
        filtered = _json(["segments", "--as-of", "2026-03-20", "--region", group["key"]["region"], "--json"])
        assert filtered["tiers"] == group["tiers"]


def test_tier_counts_by_a_customer_property_as_of_the_instant_in_a_table_and_csv(tmp_path: Path) -> None:
    crm = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    crm.change_customer_properties(ChangeCustomerProperties(BUYER, changes={"account_size": "大客户"}), at(15))
    crm.close()
    catch_up(f"sqlite:///{tmp_path / 'crm.sqlite3'}")

    before = _json(["segments", "--as-of", "2026-03-12", "--by", "account_size", "--json"])
    table = runner.invoke(app, ["segments", "--as-of", "2026-03-20", "--by", "account_size"])
    rows = list(csv.DictReader(io.StringIO(runner.invoke(
        app, ["segments", "--as-of", "2026-03-20", "--by", "account_size", "--csv"]).stdout)))
    only = _json(["segments", "--as-of", "2026-03-20", "--property", "account_size=大客户", "--json"])

    assert [g["key"]["account_size"] for g in before["groups"]] == ["unknown"]
    assert "Customer segments per account_size as of 2026-03-20 00:00 UTC" in table.output
    assert ["大客户", "high_value", "1", "300,000", "–"] in _cells(table.output)
    assert [(r["key.account_size"], r["tier"], r["customers"], r["currency"]) for r in rows if r["customers"] != "0"] == [
        ("unknown", "potential", "1", "CNY"), ("大客户", "high_value", "1", "CNY")]
    assert [t["customers"] for t in only["tiers"]] == [1, 0, 0]


@pytest.mark.parametrize("args, message", [
    (["--by", "Bad Name"], "property"),
    (["--by", "region", "--tier", "potential"], "not with --tier"),
    (["--property", "account_size"], "name=value"),
])
def test_a_bad_group_or_filter_is_refused(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["segments", *args])

    assert result.exit_code != 0
    assert message in result.output


def test_segments_run_announces_each_customers_tier_once_and_stops_cleanly(monkeypatch, tmp_path):
    import threading

    from domain.segment_change_rules import SegmentChange
    from services import segment_process

    real = segment_process.run_until_stopped

    def for_a_second(crm, stop, poll):  # as if stopped by SIGTERM after a second
        threading.Timer(1.0, stop.set).start()
        real(crm, stop, poll=poll)

    monkeypatch.setattr(segment_process, "run_until_stopped", for_a_second)
    monkeypatch.setattr("signal.signal", lambda *_: None)  # this test process keeps its own handlers
    for _ in range(2):  # the second run, on a log where they were announced, adds nothing
        result = runner.invoke(app, ["segments", "run", "--poll", "0.05"])
        assert result.exit_code == 0 and "Announcing tier changes" in result.output, result.output
    crm = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    announced = sorted((e.customer_id, e.old_tier, e.new_tier) for _, e in crm.read_log()
                       if isinstance(e, SegmentChange.Recorded))
    crm.close()
    assert announced == [(BUYER, "", "ordinary"), (PROSPECT, "", "potential")]  # BUYER's purchase is months old
