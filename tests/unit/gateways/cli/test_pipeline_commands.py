"""`crm pipeline` on an SQLite log: define from options or a TOML file, list, show, rename and insert a stage,
and every refusal writes nothing."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from gateways.cli.main import app
from services.application import CrmApplication
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner(env={"COLUMNS": "200"})  # rich's tables wrap less
RENEWALS = """
[[pipeline]]
key = "renewal"
name = "续约 / Renewals"
stages = [
    { key = "due", label = "到期 / Due" },
    { key = "offer", label = "报价 / Offer" },
]

[[pipeline]]
key = "partner"
name = "渠道 / Partners"
stages = [{ key = "signed_up", label = "签约" }, { key = "trained", label = "培训" }, { key = "selling", label = "销售" }]
"""


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    return url


def crm(*arguments: str) -> Result:
    return runner.invoke(app, ["pipeline", *arguments])


def events(url: str) -> int:
    with closing(CrmApplication(database_from_url(url))) as application:
        return application.event_count()


def listed() -> list[dict[str, object]]:
    result = crm("list", "--json")
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)["pipelines"]  # type: ignore[no-any-return]


def test_a_fresh_database_is_set_up_from_options_and_listed_at_once(url: str) -> None:
    assert listed() == []

    defined = crm("define", "renewal", "--name", "续约 / Renewals", "--stage", "due=到期 / Due",
                  "--stage", "offer=报价 = 方案")

    assert defined.exit_code == 0, defined.output
    assert "Defined pipeline renewal (2 open stages)" in defined.output
    [pipeline] = listed()  # no projector has run: the definition is read from the log's tail
    assert pipeline["key"] == "renewal" and pipeline["name"] == "续约 / Renewals" and pipeline["version"] == 1
    assert pipeline["stages"] == [{"key": "due", "label": "到期 / Due"}, {"key": "offer", "label": "报价 = 方案"}]
    table = crm("list")
    assert "renewal" in table.output and "到期 / Due → 报价 = 方案" in table.output


def test_a_toml_file_defines_several_pipelines_and_running_it_again_changes_nothing(url: str, tmp_path: Path) -> None:
    file = tmp_path / "pipelines.toml"
    file.write_text(RENEWALS, encoding="utf-8")

    first = crm("define", "--file", str(file))
    again = crm("define", "--file", str(file))

    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "Defined pipeline renewal" in first.output and "Defined pipeline partner (3 open stages)" in first.output
    assert "already defined so; left as it is" in again.output and "Defined" not in again.output
    assert [p["key"] for p in listed()] == ["partner", "renewal"]
    assert events(url) == 2


def test_the_list_joins_the_funnel_read_model_and_the_log_after_it(url: str) -> None:
    application = CrmApplication(database_from_url(url))
    application.ensure_default_pipelines(at(-30, "setup"))
    application.close()
    catch_up(url)  # the funnel read model now holds sales, marketing and service

    crm("define", "renewal", "--name", "续约", "--stage", "due=到期", "--stage", "offer=报价")
    crm("insert-stage", "sales", "discovery", "探索", "--after", "lead")

    pipelines = {p["key"]: p for p in listed()}
    assert sorted(pipelines) == ["marketing", "renewal", "sales", "service"]
    assert pipelines["sales"]["version"] == 2  # read from its events: exact, though no projector applied it
    assert [s["key"] for s in pipelines["sales"]["stages"]][:2] == ["lead", "discovery"]


def test_show_rename_and_insert(url: str) -> None:
    crm("define", "renewal", "--name", "续约", "--stage", "due=到期", "--stage", "offer=报价")

    inserted = crm("insert-stage", "renewal", "call", "回访", "--after", "due", "--actor", "王芳")
    renamed = crm("rename-stage", "renewal", "offer", "续约报价", "--expected-version", "2")
    shown = crm("show", "renewal")
    as_json = orjson.loads(crm("show", "renewal", "--json").stdout)

    assert inserted.exit_code == 0 and renamed.exit_code == 0, inserted.output + renamed.output
    assert "version 3" in shown.output and "回访" in shown.output and "赢单 / Won" in shown.output
    assert as_json["version"] == 3
    unknown = crm("rename-stage", "renewal", "nowhere", "某处")
    assert unknown.exit_code == 1 and "unknown stage 'nowhere' in pipeline 'renewal'" in unknown.output
    assert as_json["stages"] == [{"key": "due", "label": "到期"}, {"key": "call", "label": "回访"},
                                 {"key": "offer", "label": "续约报价"}]


@pytest.mark.parametrize(("arguments", "message"), [
    (["define", "renewal", "--name", "续约", "--stage", "due=到期"], "at least 2 items"),
    (["define", "renewal", "--name", "续约", "--stage", "due"], "'due' is not key=label"),
    (["define", "Renewal", "--name", "续约", "--stage", "a=1", "--stage", "b=2"], "should match pattern"),
    (["define", "renewal", "--name", "续约", "--stage", "won=1", "--stage", "b=2"], "reserved for the terminal"),
    (["define", "renewal", "--name", "续约", "--stage", "a=1", "--stage", "a=2"], "stage keys must be unique"),
    (["define", "renewal", "--stage", "a=1", "--stage", "b=2"], "needs KEY and --name"),
    (["show", "nothing"], "unknown pipeline 'nothing'"),
    (["rename-stage", "nothing", "a", "b"], "unknown pipeline 'nothing'"),
    (["insert-stage", "nothing", "a", "b"], "unknown pipeline 'nothing'"),
])
def test_refusals_exit_non_zero_with_a_message_and_write_nothing(url: str, arguments: list[str], message: str) -> None:
    result = crm(*arguments)

    assert result.exit_code != 0
    assert message in result.output
    assert events(url) == 0


@pytest.mark.parametrize(("text", "message"), [
    ("key = 'x'", "expected one or more [[pipeline]] tables"),
    ("[[pipeline]]\nkey = 'a'\nname = 'A'\nstages = [{key = 'b', lable = 'B'}, {key = 'c', label = 'C'}]",
     "stages.0.lable: unexpected keyword argument"),
    ("[[pipeline]]\nkey = 'a'\nname = 'A'\ncolour = 'red'\nstages = [{key = 'b', label = 'B'}, {key = 'c', label = 'C'}]",
     "unknown field(s) colour"),
    (RENEWALS + "\n[[pipeline]]\nkey = 'renewal'\nname = 'again'\nstages = [{key = 'b', label = 'B'}, "
                "{key = 'c', label = 'C'}]", "pipeline 'renewal' is defined twice"),
    ("[[pipeline]\nkey = 'a'", "is not valid TOML"),
])
def test_a_bad_file_is_refused_whole(url: str, tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "pipelines.toml"
    file.write_text(text, encoding="utf-8")

    result = crm("define", "--file", str(file))

    assert result.exit_code == 1
    assert message in result.output.lower() or message in result.output
    assert events(url) == 0


def test_a_file_with_one_pipeline_defined_otherwise_writes_none_of_them(url: str, tmp_path: Path) -> None:
    crm("define", "partner", "--name", "渠道", "--stage", "a=1", "--stage", "b=2")
    file = tmp_path / "pipelines.toml"
    file.write_text(RENEWALS, encoding="utf-8")

    result = crm("define", "--file", str(file))

    assert result.exit_code == 1 and "'partner' is already defined otherwise" in result.output
    assert [p["key"] for p in listed()] == ["partner"]


def test_file_and_options_together_are_refused(url: str, tmp_path: Path) -> None:
    file = tmp_path / "pipelines.toml"
    file.write_text(RENEWALS, encoding="utf-8")

    result = crm("define", "renewal", "--file", str(file))

    assert result.exit_code == 2 and "either --file or KEY" in result.output


def test_the_help_of_a_pipeline_file_keeps_its_brackets() -> None:
    result = crm("define", "--help")

    assert "A TOML file of [[pipeline]] tables" in " ".join(result.output.split()), result.output
