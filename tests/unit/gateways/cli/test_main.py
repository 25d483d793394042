"""`crm`'s commands are imported when used: a query loads no server, broker client or import machinery.

Guards the CLI's start (issue 12: ≤ 0.5 s for a query; timed in tests/benchmarks/cli_start.py) without timing:
a fresh interpreter runs `crm funnel --json` on a built SQLite log and lists the modules it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gateways.cli.main import COMMANDS, app
from services.application import CrmApplication
from services.settings import database_from_url
from tests.conftest import catch_up

REPO_ROOT = Path(__file__).resolve().parents[4]
# What a query must not import: each costs 0.05–0.3 s, and none answers a report.
HEAVY = ("fastapi", "starlette", "uvicorn", "gunicorn", "kafka", "psycopg", "psycopg_pool", "eventsourcing.postgres",
         "gateways.http", "gateways.kafka", "services.history", "services.demo", "services.healing",
         "services.projection_runtime.registry", "rich.progress", "prometheus_client", "services.metrics")
LOADED = ("import atexit, json, runpy, sys; "
          "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr)); "
          "sys.argv = ['crm', *sys.argv[1:]]; runpy.run_module('gateways.cli.main', run_name='__main__')")


def _run_crm(*arguments: str, url: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {**os.environ, "CRM_DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", LOADED, *arguments], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    return done, set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_a_funnel_query_imports_no_server_broker_or_import_machinery(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    app_ = CrmApplication(database_from_url(url))
    app_.ensure_default_pipelines()
    app_.close()
    catch_up(url)

    done, loaded = _run_crm("funnel", "--json", url=url)

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["pipeline"] == "sales"
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY or any(
        name == prefix or name.startswith(prefix + ".") for prefix in HEAVY))
    assert heavy == []
    assert "gateways.cli.funnel_commands" in loaded
    assert not {"gateways.cli.serve_commands", "gateways.cli.kafka_commands", "gateways.cli.import_commands"} & loaded


def test_help_lists_every_command_and_each_command_has_its_own_help() -> None:
    runner = CliRunner()

    listing = runner.invoke(app, ["--help"])

    assert listing.exit_code == 0, listing.output
    for name in COMMANDS:
        assert f" {name} " in listing.output
        shown = runner.invoke(app, [name, "--help"])
        assert shown.exit_code == 0, (name, shown.output)
        assert "Usage:" in shown.output and name in shown.output


def test_options_and_errors_of_a_lazily_loaded_command_work(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["funnel", "--segment", "nobody"],
                                env={"CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}"})

    assert result.exit_code == 2
    assert "unknown segment 'nobody'" in result.output
    assert CliRunner().invoke(app, ["no-such-command"]).exit_code == 2
