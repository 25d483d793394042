"""`crm rates import` (a long CSV and the ECB's wide one, `--inverse`, `--dry-run`, idempotent, refusals by line
and column writing nothing) and `crm rates list` (in force at an instant, or every date recorded)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateways.cli.main import app
from services.application import CrmApplication
from services.settings import database_from_url
from tests.conftest import catch_up

runner = CliRunner()
LONG = "date,currency,rate,source\n2026-03-02,USD,7.1234,人民银行\n2026-03-03,USD,7.13,\n2026-03-02,BRL,1.25,BCB\n"
ECB = "Date,USD,JPY,BGN,\n2026-03-03,1.0812,160.5,N/A,\n2026-03-02,1.0800,161,1.9558,\n"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crm.sqlite3'}"


def _crm(url: str, *args: str, **env: str) -> Result:
    return runner.invoke(app, list(args), env={"CRM_DATABASE_URL": url, "COLUMNS": "200", **env})


def _file(tmp_path: Path, text: str, name: str = "rates.csv") -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


def _events(url: str) -> int:
    crm = CrmApplication(database_from_url(url))
    try:
        return crm.event_count()
    finally:
        crm.close()


def test_a_long_file_is_recorded_once_and_listed_as_of_an_instant(url, tmp_path) -> None:
    path = _file(tmp_path, LONG)

    first = _crm(url, "rates", "import", path, "--json")
    again = _crm(url, "rates", "import", path, "--json")
    catch_up(url)
    listed = _crm(url, "rates", "list", "--as-of", "2026-03-02T18:00", "--json")

    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["outcomes"] == {"recorded": 3}
    assert json.loads(again.output)["outcomes"] == {"unchanged": 3}
    assert json.loads(listed.output)["rates"] == [
        {"currency": "BRL", "quote": "CNY", "valid_from": "2026-03-02", "rate": "1.25"},
        {"currency": "USD", "quote": "CNY", "valid_from": "2026-03-02", "rate": "7.1234"}]
    history = json.loads(_crm(url, "rates", "list", "--history", "--currency", "USD", "--json").output)["rates"]
    assert [(r["valid_from"], r["source"]) for r in history] == [("2026-03-03", "rates.csv"),
                                                                 ("2026-03-02", "人民银行")]
    as_csv = _crm(url, "rates", "list", "--history", "--currency", "USD", "--csv")
    assert [(r["valid_from"], r["rate"], r["source"]) for r in csv.DictReader(io.StringIO(as_csv.stdout))] == [
        (r["valid_from"], r["rate"], r["source"]) for r in history]


def test_the_ecbs_wide_file_inverted_into_euros_skips_withdrawn_currencies(url, tmp_path) -> None:
    path = _file(tmp_path, ECB, "eurofxref-hist.csv")

    dry = _crm(url, "rates", "import", path, "--quote", "EUR", "--inverse", "--dry-run", "--json")
    assert json.loads(dry.output) | {"outcomes": None} == {
        "dry_run": True, "rates": 4, "outcomes": None, "currencies": {"USD": 2, "JPY": 2}, "first": "2026-03-02",
        "last": "2026-03-03", "skipped_columns": ["BGN"]}
    assert _events(url) == 0
    assert _crm(url, "rates", "import", path, "--quote", "EUR", "--inverse").exit_code == 0
    catch_up(url)
    listed = json.loads(_crm(url, "rates", "list", "--json", CRM_REPORTING_CURRENCY="EUR").output)
    assert {r["currency"]: r["rate"] for r in listed["rates"]} == {"JPY": "0.006230529595", "USD": "0.924898261191"}


@pytest.mark.parametrize(("text", "where"), [
    ("date,currency,rate\n2026-03-02,USD,0\n", "line 2, column 'rate': rate must be a positive number"),
    ("date,currency,rate\n2026-03-02,USD,7\n2026-13-01,USD,7\n", "line 3, column 'date'"),
    ("date,currency,rate\n2026-03-02,XAU,7\n", "line 2, column 'rate': currency 'XAU' is not one a customer"),
    ("day;code;value\n", "line 1: the header must name date, currency and rate"),
    ("date,currency,rate\n2024-01-01,USD,7.1\n2024-01-02,USD,7.2\n2024-01-01,USD,7.3\n",
     "line 4: USD on 2024-01-01 is 7.3 here but 7.1 on line 2; a file states each rate once"),
    ("Date,USD\n2024-01-01,7.1\n2024-01-01,7.10001\n", "line 3: USD on 2024-01-01 is 7.10001 here but 7.1 on line 2"),
])
def test_a_bad_row_is_named_by_line_and_column_and_nothing_is_written(url, tmp_path, text, where) -> None:
    result = _crm(url, "rates", "import", _file(tmp_path, text))

    assert result.exit_code == 1
    assert where in " ".join(result.output.split()), result.output
    assert _events(url) == 0


def test_the_same_rate_twice_in_a_file_is_recorded_once(url, tmp_path) -> None:
    path = _file(tmp_path, "date,currency,rate\n2024-01-01,USD,7.1\n2024-01-01,USD,7.10\n")

    result = _crm(url, "rates", "import", path, "--json")

    assert result.exit_code == 0, result.output
    assert (json.loads(result.output)["rates"], json.loads(result.output)["outcomes"]) == (1, {"recorded": 1})
    assert _events(url) == 1
