"""`crm projections status` with read models fed by partitions: offsets, positions and stops per partition;
`crm projections resume NAME --partition P [--skip]` lets one go on there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import CaptureLead
from services.projection_runtime.partitioned import Delivery, PartitionedProjector
from services.projection_runtime.projector import Failure
from services.projection_runtime.registry import READ_MODELS, projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at

runner = CliRunner()


def crm(url: str, *args: str) -> Any:
    return runner.invoke(app, list(args), env={"CRM_DATABASE_URL": url, "COLUMNS": "200"})


def consumed_with_a_stop(url: str) -> None:
    """Two partitions applied by a consumer (positions 4 … 6 of its shard), the timeline stopped in 9."""
    application = CrmApplication(database_from_url(url))
    store = ReadModelStore(application.database)
    try:
        application.ensure_default_pipelines(at(-30, "setup"))
        for i in range(3):
            application.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web"), at(i))
        leads = [event for _, event in application.read_log() if type(event).__qualname__ == "Lead.Captured"]
        projector = PartitionedProjector(store, projector_for(application, store).models)
        projector.apply([Delivery(9, 0, leads[0], 4), Delivery(12, 0, leads[1], 5), Delivery(12, 1, leads[2], 6)])
        projector._stop(Delivery(9, 1, leads[2], 7), Failure("timeline", 1, "a", "Lead.Captured", "boom", "now"))
    finally:
        store.close()
        application.close()


def test_status_shows_each_partition_and_resume_lets_a_read_model_go_on_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    consumed_with_a_stop(url)

    stopped = crm(url, "projections", "status")
    not_there = crm(url, "projections", "resume", "timeline", "--partition", "12")
    resumed = crm(url, "projections", "resume", "timeline", "--partition", "9", "--skip")
    running = crm(url, "projections", "status")

    assert stopped.exit_code == 1, stopped.output
    every = f"{len(READ_MODELS)}/{len(READ_MODELS)}"
    assert re.search(rf"│\s+9\s+│\s+0\s+│\s+4\s+│\s+{every}\s+│\s+stopped: timeline", stopped.output), (
        stopped.output)
    assert re.search(rf"│\s+12\s+│\s+1\s+│\s+6\s+│\s+{every}\s+│\s+running", stopped.output)
    assert "crm projections resume timeline --partition 9" in " ".join(stopped.output.split())
    assert not_there.exit_code == 0 and "timeline was not stopped in partition 12" in not_there.output
    assert resumed.exit_code == 0 and "passed by Lead.Captured of a at partition 9 offset 1" in resumed.output
    assert running.exit_code == 0, running.output
    assert re.search(r"│\s+9\s+│\s+0\s+│\s+4\s+│.*running", running.output), running.output


def test_partition_must_be_one_of_the_64(tmp_path: Path) -> None:
    result = crm(f"sqlite:///{tmp_path / 'crm.sqlite3'}", "projections", "resume", "timeline", "--partition", "64")

    assert result.exit_code == 2 and "less than or equal to 63" in " ".join(result.output.split()), result.output
