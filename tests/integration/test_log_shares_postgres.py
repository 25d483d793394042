"""The flat log read by worker processes (services/bulk/log_shares.py) on PostgreSQL: the very rows, in the
very order, of one process's read, from the reader's own snapshot (events committed meanwhile are not in it),
and a worker's failure raised rather than a short log."""

from __future__ import annotations

import pyarrow as pa
import pytest

from domain.partitions import PARTITIONS
from services.application import CrmApplication
from services.bulk import log_shares
from services.bulk.log_reader import LOG_SCHEMA, read_log
from services.commands import RegisterCustomer
from services.demo.sample_data import DemoHistory, DemoSettings
from services.settings import database_from_url
from tests.conftest import at


def _read(database: object, monkeypatch: pytest.MonkeyPatch, shared: bool, **options: object) -> pa.Table:
    monkeypatch.setattr(log_shares, "SHARED_FROM", 0 if shared else 10**12)
    monkeypatch.setattr(log_shares, "idle_share", lambda: 1.0)  # workers however busy the machine is
    with read_log(database, batch_rows=70, **options) as read:  # type: ignore[arg-type]
        return read.table()


def test_worker_processes_read_the_rows_one_process_reads(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = database_from_url(pg_database)
    app = CrmApplication(database)
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=5, leads=120, days=90)).run()
    app.close()
    assert log_shares.worker_count(10**6, cores=2, idle=0.9) == 2 and log_shares.worker_count(10**6, cores=1, idle=1) == 0
    assert log_shares.worker_count(10**6, cores=2, idle=0.3) == 0 and log_shares.worker_count(10**3, cores=2, idle=1) == 0
    assert 0 <= log_shares.idle_share(0.05) <= 1
    for options in ({}, {"start": 150}, {"topics": ["domain.deal:Deal.Opened", "domain.deal:Deal.Won"]}):
        alone, shared = _read(database, monkeypatch, False, **options), _read(database, monkeypatch, True, **options)
        assert shared.schema == LOG_SCHEMA and shared.num_rows > 10
        assert shared.equals(alone), options
        assert shared.column("position").to_pylist() == sorted(shared.column("position").to_pylist())
    assert set(alone.column("partition").to_pylist()) <= set(range(PARTITIONS))


def test_the_workers_read_the_snapshot_the_read_began_with(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = database_from_url(pg_database)
    app = CrmApplication(database)
    app.ensure_default_pipelines(at(-1))
    for n in range(40):
        app.register_customer(RegisterCustomer(f"客户{n}", "华东", "制造业", "web"), at(n))
    monkeypatch.setattr(log_shares, "SHARED_FROM", 0)
    monkeypatch.setattr(log_shares, "idle_share", lambda: 1.0)
    with read_log(database, batch_rows=7) as read:
        app.register_customer(RegisterCustomer("后来的", "华东", "制造业", "web"), at(50))  # committed after the head
        positions = read.table().column("position").to_pylist()
    app.close()
    assert positions == list(range(1, read.head + 1)) and read.head == 43


def test_a_worker_that_fails_is_an_error_not_a_shorter_log(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = database_from_url(pg_database)
    app = CrmApplication(database)
    app.ensure_default_pipelines(at(-1))
    app.close()
    start = log_shares._start
    monkeypatch.setattr(log_shares, "_start", lambda stack, task: start(stack, {**task, "snapshot": "00000000-1"}))
    monkeypatch.setattr(log_shares, "SHARED_FROM", 0)
    monkeypatch.setattr(log_shares, "idle_share", lambda: 1.0)
    with pytest.raises(RuntimeError, match="(?s)log reader process ended .*invalid snapshot"):
        with read_log(database) as read:
            read.table()
