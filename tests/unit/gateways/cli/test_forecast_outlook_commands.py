"""`crm forecast predict` and `crm forecast backtest` on an SQLite log: JSON, CSV and the terminal table, periods
of the installation's zone (or --tz), and bad input exiting ≠ 0 with a sentence."""

from __future__ import annotations

from contextlib import closing
from datetime import date

import orjson
import pytest
from typer.testing import CliRunner, Result

from gateways.cli.main import app
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.forecast_history import build

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('outlook') / 'crm.sqlite3'}"
    with closing(CrmApplication(database := database_from_url(url))) as crm:
        build(crm, date(2023, 1, 1), 30)
        with closing(ReadModelStore(database)) as store:
            projector_for(crm, store).catch_up()
    return url


@pytest.fixture(autouse=True)
def environment(log: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", log)
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")


def crm(*arguments: str) -> Result:
    return runner.invoke(app, list(arguments))


def test_predict_answers_every_method_as_json() -> None:
    answer = crm("forecast", "predict", "--as-of", "2025-06-01", "--periods", "2", "--json")

    assert answer.exit_code == 0, answer.output
    found = orjson.loads(answer.output)
    assert found["as_of"] == "2025-06-01T00:00:00+08:00" and found["zone"] == "Asia/Shanghai"
    assert [p["period"] for p in found["horizon"]] == ["2025-06", "2025-07"]
    assert [m["method"] for m in found["methods"]] == ["weighted", "pipeline_conversion", "trend", "seasonal", "naive"]
    assert all(m["available"] for m in found["methods"])


def test_backtest_prints_a_table_and_a_csv_of_errors() -> None:
    table = crm("forecast", "backtest", "--as-of", "2024-03-01", "--actual-as-of", "2025-06-01", "--periods", "3")
    csv = crm("forecast", "backtest", "--as-of", "2024-03-01", "--actual-as-of", "2025-06-01", "--csv", "--table",
              "errors")

    assert table.exit_code == 0, table.output
    assert "Backtest by month" in table.output and "not enough history: 14 periods, need 24" in table.output
    assert csv.exit_code == 0, csv.output
    lines = csv.output.splitlines()
    assert lines[0].startswith("method,available,reason,basis,periods_compared,mae_cents,mape_percent,bias_cents")
    assert len(lines) == 6 and lines[4].startswith('seasonal,false,"not enough history: 14 periods')


def test_the_plain_forecast_still_answers_beside_its_subcommands() -> None:
    answer = crm("forecast", "--as-of", "2025-06-01", "--json")

    assert answer.exit_code == 0 and "rows" in orjson.loads(answer.output)


def test_tz_sets_the_periods() -> None:
    found = orjson.loads(crm("forecast", "predict", "--as-of", "2025-06-01T00:00:00+00:00", "--tz", "UTC",
                             "--periods", "1", "--method", "naive", "--json").output)

    assert found["zone"] == "UTC" and found["horizon"][0]["start"] == "2025-06-01T00:00:00+00:00"
    assert [m["method"] for m in found["methods"]] == ["naive"]


@pytest.mark.parametrize(("arguments", "message"), [
    (("forecast", "predict", "--periods", "0"), "from 1 to 24"),
    (("forecast", "predict", "--method", "prophet"), "unknown forecast method 'prophet'"),
    (("forecast", "predict", "--grain", "week"), "month or quarter"),
    (("forecast", "predict", "--level", "100"), "from 50 to 99"),
    (("forecast", "backtest", "--as-of", "2025-06-01", "--actual-as-of", "2025-05-01"), "must be after as_of"),
    (("forecast", "backtest", "--as-of", "yesterday"), "not an ISO 8601"),
    (("forecast", "backtest"), "--as-of"),
    (("forecast", "predict", "--tz", "Mars/Olympus"), "not a time zone"),
])
def test_bad_input_exits_non_zero_with_a_sentence(arguments: tuple[str, ...], message: str) -> None:
    answer = crm(*arguments)

    assert answer.exit_code != 0 and message in answer.output, answer.output
