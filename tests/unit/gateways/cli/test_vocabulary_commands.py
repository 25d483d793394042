"""`crm vocabulary list/show/set/add/retire` on an SQLite log: changes are events, and commands then check
records against them; refusals exit non-zero with a message and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import CaptureLead
from services.settings import database_from_url
from tests.conftest import at

runner = CliRunner()


@pytest.fixture
def log_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crm.sqlite3'}"


def run(url: str, *args: str) -> Result:
    return runner.invoke(app, ["vocabulary", *args], env={"CRM_DATABASE_URL": url, "COLUMNS": "200"})


def test_list_shows_the_defaults_of_a_new_installation(log_url: str) -> None:
    result = run(log_url, "list", "--json")

    assert result.exit_code == 0, result.output
    views = {view["kind"]: view for view in json.loads(result.output)}
    assert set(views) == {"acquisition_channel", "touch_channel", "region", "industry", "loss_reason"}
    assert views["acquisition_channel"]["values"][:3] == ["email", "phone", "web"]
    assert not any(view["defined"] for view in views.values())
    assert "acquisition_channel" in run(log_url, "list").output


def test_set_add_and_retire_change_what_commands_accept(log_url: str) -> None:
    assert run(log_url, "set", "acquisition_channel", "paid_search", "organic_search", "直播").exit_code == 0
    assert run(log_url, "add", "acquisition_channel", "display").exit_code == 0
    retired = run(log_url, "retire", "acquisition_channel", "直播")
    assert retired.exit_code == 0 and "'直播' retired (version 3)" in retired.output

    shown = json.loads(run(log_url, "show", "acquisition_channel", "--json").output)
    assert shown == {"kind": "acquisition_channel", "values": ["paid_search", "organic_search", "display"],
                     "open": False, "retired": ["直播"], "defined": True, "version": 3}
    assert "retired: 直播" in run(log_url, "show", "acquisition_channel").output
    crm = CrmApplication(database_from_url(log_url))
    try:
        crm.capture_lead(CaptureLead(channel="display"), at(0))
        with pytest.raises(Exception, match="unknown acquisition channel 'web'"):
            crm.capture_lead(CaptureLead(channel="web"), at(0))
    finally:
        crm.close()


def test_an_open_kind_accepts_any_dimension(log_url: str) -> None:
    assert run(log_url, "set", "industry", "金融", "--open").exit_code == 0

    assert json.loads(run(log_url, "show", "industry", "--json").output)["open"] is True


@pytest.mark.parametrize(("args", "message"), [
    (("show", "colour"), "unknown vocabulary kind 'colour'"),
    (("add", "touch_channel", "email"), "vocabulary 'touch_channel' already has 'email'"),
    (("retire", "touch_channel", "fax"), "has no value 'fax' in force"),
    (("add", "region", "王 139 1234 5678"), "region must not hold an e-mail address or a phone number"),
    (("set", "industry", "金融", "金融"), "must be unique"),
])
def test_refusals_exit_non_zero_and_write_nothing(log_url: str, args: tuple[str, ...], message: str) -> None:
    result = run(log_url, *args)

    assert result.exit_code == 1
    assert message in result.output
    crm = CrmApplication(database_from_url(log_url))
    try:
        assert crm.event_count() == 0
    finally:
        crm.close()
