"""README.md's commands, run for real against the embedded SQLite default in a temporary folder, in the
README's order: a command the README shows that no longer works fails here, naming its README line.

How each block is checked is written above it in the README as an invisible `<!-- doc-test: … -->` comment
(tests/support/markdown_commands.py). The `crm` commands run in this process through typer's CliRunner on the
entry point pyproject.toml installs as `.venv/bin/crm` (20 of them as processes would take 50–100 s)."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from domain.customer import Customer
from gateways.cli.common import crm_application
from tests.support.markdown_commands import Session, check_installs, read_blocks, run_document

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def crm_entry_point() -> object:
    """What `.venv/bin/crm` runs, as pyproject.toml declares it."""
    module, attribute = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["crm"].split(":")
    return getattr(importlib.import_module(module), attribute)


def printed_deal_id(session: Session) -> str:
    """DEAL_ID: "the demo prints an id" — the won deal whose audit trail it suggests."""
    found = re.search(r"crm deal history ([0-9a-f-]{36})", "\n".join(session.outputs))
    assert found, "the demo printed no deal id, though the README says it does"
    return found.group(1)


def a_customer_id(session: Session) -> str:
    """CUSTOMER_ID: the first customer registered in the log."""
    with crm_application() as crm:
        return str(next(crm.read_log(topics=[get_topic(Customer.Registered)]))[1].originator_id)


def sample_exports(session: Session) -> str:
    """SAMPLE_EXPORTS: the sample exports, copied beside the commands, which name them relative to the repository."""
    return str(ROOT / "tests" / "fixtures")


PLACEHOLDERS = {"DEAL_ID": printed_deal_id, "CUSTOMER_ID": a_customer_id, "SAMPLE_EXPORTS": sample_exports}


def test_every_command_the_readme_shows_runs_on_the_embedded_sqlite_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "200")  # rich's tables wrap less, so shown output is easier to find
    session = Session(README, tmp_path, crm_entry_point(), PLACEHOLDERS)

    failures = run_document(read_blocks(README), session)

    assert not failures, "README commands that no longer work:\n\n" + "\n\n".join(failures)


def test_the_two_set_up_commands_are_executable_scripts_and_ci_runs_the_test_command() -> None:
    blocks = read_blocks(README)

    failures = check_installs(blocks, ROOT, README)

    assert not failures, "\n".join(failures)
    assert sum(1 for block in blocks if block.marked("install")) == 2  # "Two commands on a fresh machine"
