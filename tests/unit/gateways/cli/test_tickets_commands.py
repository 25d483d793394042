"""`crm tickets` on an SQLite log: JSON, tables and refusals."""

import csv
import io
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from gateways.cli.tickets_commands import tickets
from services.application import CrmApplication
from services.commands import (AssignTicket, ChangeCustomerProperties, ChangeTicketStatus, OpenDeal, OpenTicket,
                               RateTicket, RegisterCustomer, ResolveTicket, WinDeal)
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner()


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One high-priority ticket answered after 5 h (late), resolved after 10 h, rated 5; a deal won later."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="某公司"), at(0))
    deal = crm.open_deal(OpenDeal(customer, "增购", "100", owner="李娜"), at(0))
    ticket = crm.open_ticket(OpenTicket(customer, "系统登录失败", "phone", priority="high"), at(1, "客户"))
    crm.assign_ticket(AssignTicket(ticket, "赵磊"), at(1))
    crm.change_ticket_status(ChangeTicketStatus(ticket, "in_progress"), at(1 + 5 / 24, "赵磊"))
    crm.resolve_ticket(ResolveTicket(ticket, "已远程协助处理"), at(1 + 10 / 24, "赵磊"))
    crm.rate_ticket(RateTicket(ticket, 5, ""), at(2, "客户"))
    crm.win_deal(WinDeal(deal), at(3))
    other = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "event", company="另一公司"), at(0))
    crm.change_customer_properties(ChangeCustomerProperties(customer, {"account_size": "大型"}), at(0))
    crm.open_ticket(OpenTicket(other, "续费流程咨询", "email", priority="low"), at(4, "客户"))
    crm.close()
    catch_up(url)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command()(tickets)
    return app


def test_grouped_by_a_property_of_the_customer_and_filtered(recorded: None) -> None:
    grouped = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-06", "--by", "account_size", "--json"])
    filtered = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-06", "--property", "account_size=大型", "--json"])

    assert grouped.exit_code == 0, grouped.output
    groups = orjson.loads(grouped.stdout)["groups"]
    assert [(g["key"], g["funnel"]["feedback"], g["backlog"]["total"]) for g in groups] == [
        ({"account_size": "大型"}, 1, 0), ({"account_size": None}, 1, 1)]
    assert groups[1]["csat"]["overall"]["satisfied_share"] is None  # no ratings: null, as the plain report
    large = {key: value for key, value in groups[0].items() if key != "key"}
    assert large == orjson.loads(filtered.stdout)


def test_grouped_csv_and_tables(recorded: None) -> None:
    as_csv = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-06", "--by", "region", "--csv"])
    text = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-06", "--by", "owner"])

    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["key.region"], r["tickets"], r["first_response_late"], r["satisfied_share"], r["satisfied_note"])
            for r in rows] == [("华东", "1", "1", "1.0", ""), ("华南", "1", "0", "", "no ratings")]
    assert text.exit_code == 0, text.output
    assert "Service tickets by owner" in text.output and "赵磊" in text.output and "(unassigned)" in text.output


def test_a_bad_axis_or_filter_is_refused(recorded: None) -> None:
    axis = runner.invoke(_cli(), ["tickets", "--by", "No Such"])
    prop = runner.invoke(_cli(), ["tickets", "--property", "account_size"])

    assert axis.exit_code != 0 and "No Such" in axis.output
    assert prop.exit_code != 0 and "name=value" in prop.output


def test_json_report_as_of_an_instant(recorded: None) -> None:
    result = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--json"])

    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    assert data["backlog"]["per_status"]["resolved"] == 1 and data["backlog"]["total"] == 0
    assert (data["first_response"]["median_hours"], data["resolution"]["median_hours"]) == (5.0, 10.0)
    assert data["sla"]["first_response_breaches"]["high"] == 1 and data["sla"]["resolution_breaches"]["high"] == 0
    assert [s["count"] for s in data["funnel"]["steps"]] == [1, 1, 1, 1, 1]  # … and loyal after the win on day 3


def test_tables_show_every_section(recorded: None) -> None:
    result = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-02T20:00"])  # resolved, not rated yet

    assert result.exit_code == 0, result.output
    for title in ("Service tickets as of 2026-03-02 20:00 UTC", "Backlog: 0 being worked on", "Response and resolution",
                  "SLA breaches",
                  "Breaching tickets (1 of 1 shown", "CSAT", "Service funnel"):
        assert title in result.output
    assert "系统登录失败" in result.output and "赵磊" in result.output


def test_a_malformed_instant_is_refused(recorded: None) -> None:
    result = runner.invoke(_cli(), ["tickets", "--as-of", "yesterday"])

    assert result.exit_code == 2
    assert "'yesterday' is not an ISO 8601 date or time" in result.output


def test_csv_tables_parse_back_and_missing_rates_are_empty_cells(recorded: None) -> None:
    early = runner.invoke(_cli(), ["tickets", "--as-of", "2026-02-01", "--csv"])  # before any ticket
    breaching = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--csv", "--table", "breaching"])

    assert early.exit_code == 0, early.output
    steps = list(csv.DictReader(io.StringIO(early.stdout)))
    assert [(s["step"], s["conversion"], s["conversion_note"]) for s in steps][:2] == [
        ("feedback", "", "the first step"), ("resolved", "", "no tickets")]
    assert [row["subject"] for row in csv.DictReader(io.StringIO(breaching.stdout))] == ["系统登录失败"]


def test_breaching_tickets_are_capped_with_their_total(recorded: None) -> None:
    result = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--json", "--breaching-limit", "0"])

    sla = orjson.loads(result.stdout)["sla"]
    assert (sla["breaching"], sla["breaching_total"]) == ([], 1)


def test_breaching_tickets_are_paged_from_an_offset(recorded: None) -> None:
    first = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--json", "--breaching-offset", "0"])
    past = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--json", "--breaching-offset", "1"])

    assert [b["subject"] for b in orjson.loads(first.stdout)["sla"]["breaching"]] == ["系统登录失败"]
    sla = orjson.loads(past.stdout)["sla"]
    assert (sla["breaching"], sla["breaching_total"]) == ([], 1)


@pytest.mark.parametrize("option", [["--breaching-offset", "-1"], ["--breaching-limit", "501"],
                                    ["--breaching-offset", "x"]])
def test_a_bad_page_of_breaching_tickets_is_refused(recorded: None, option: list[str]) -> None:
    result = runner.invoke(_cli(), ["tickets", "--json", *option])

    assert result.exit_code != 0 and "breaching" in result.output and not result.stdout.startswith("{")


def test_an_unknown_table_and_json_with_csv_are_refused(recorded: None) -> None:
    unknown = runner.invoke(_cli(), ["tickets", "--csv", "--table", "nope"])
    both = runner.invoke(_cli(), ["tickets", "--csv", "--json"])

    assert unknown.exit_code != 0 and "funnel, backlog, times, sla, breaching, csat" in unknown.output
    assert both.exit_code != 0 and "--json and --csv" in both.output


def test_grouped_breaching_tickets_are_paged_from_the_offset_as_the_api_pages_them(recorded: None) -> None:
    """`--by` with `--breaching-offset` skips as the plain report does (it once listed every group from its first
    breach, the offset ignored), each group's total kept: as GET /reports/tickets?by=…&offset=…"""
    first = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--by", "priority", "--json"])
    past = runner.invoke(_cli(), ["tickets", "--as-of", "2026-03-05", "--by", "priority", "--json",
                                  "--breaching-offset", "1"])

    assert first.exit_code == 0 and past.exit_code == 0, past.output
    pages = [{g["key"]["priority"]: ([b["subject"] for b in g["sla"]["breaching"]], g["sla"]["breaching_total"])
              for g in orjson.loads(result.stdout)["groups"]} for result in (first, past)]
    assert pages == [{"high": (["系统登录失败"], 1)}, {"high": ([], 1)}]


def test_a_breaching_limit_over_the_apis_page_is_refused_with_the_range(recorded: None) -> None:
    """Not capped silently at 500: refused, saying the range (the API's limit is 1–500 too)."""
    result = runner.invoke(_cli(), ["tickets", "--by", "priority", "--json", "--breaching-limit", "501"])

    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "'--breaching-limit': Input should be less than or equal to 500" in said
