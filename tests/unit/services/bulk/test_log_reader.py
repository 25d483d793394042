"""The flat log (services.bulk.log_reader): plain JSON, upcasting, partitions, one snapshot; on SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from domain.partitions import partition_of
from services.application import CrmApplication
from services.bulk.log_reader import LOG_SCHEMA, UnsupportedLog, plain_state, read_log
from services.commands import LoseDeal, OpenDeal, RegisterCustomer
from services.settings import database_from_url
from tests.conftest import at


def test_the_log_becomes_flat_rows_of_plain_json(tmp_path: Path) -> None:
    database = database_from_url(f"sqlite:///{tmp_path / 'log.db'}")
    app = CrmApplication(database)
    app.ensure_default_pipelines(at(-1))
    customer = app.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", email="z@example.com"), at(0))
    deal = app.open_deal(OpenDeal(customer, "项目", "1234.50", owner="李娜"), at(1))
    app.lose_deal(LoseDeal(deal, "价格"), at(2))
    app.close()
    with read_log(database) as read:
        table = read.table()
    assert table.schema == LOG_SCHEMA and read.head == table.num_rows == 6
    rows = table.to_pylist()
    opened = next(r for r in rows if r["event"] == "Opened")
    state = orjson.loads(opened["state"])
    assert (opened["kind"], opened["aggregate_id"], opened["version"]) == ("Deal", str(deal), 1)
    assert opened["partition"] == partition_of(deal) == partition_of(customer)
    assert state["customer_id"] == str(customer) and state["amount"] == "1234.50"
    assert state["occurred_at"] == at(1).occurred_at.isoformat()
    assert opened["recorded_at"].isoformat() == state["timestamp"]
    assert {r["partition"] for r in rows if r["kind"] == "Pipeline"} == {-1}  # reference data
    registered = orjson.loads(next(r for r in rows if r["event"] == "Registered")["state"])
    assert registered["email"].startswith("pii:v1:")  # personal fields stay sealed
    with read_log(database, start=4) as read:
        assert [r["position"] for r in read.table().to_pylist()] == [5, 6]
    with read_log(database, topics=["domain.deal:Deal.Lost", "domain.pipeline:Pipeline.Defined"]) as read:
        assert [r["position"] for r in read.table().to_pylist()] == [1, 2, 3, 6] and read.head == 6


def test_older_class_versions_are_upcast_as_the_mapper_does() -> None:
    """A `Deal.Lost` stored before version 2 (no `competitor`, no `class_version`) reads as version 2."""
    stored = orjson.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": "2026-03-01T09:00:00+00:00"},
                           "from_stage": "lead", "reason": "价格"})
    state, timestamp = plain_state("domain.deal:Deal.Lost", stored)
    assert orjson.loads(state) == {"timestamp": "2026-03-01T09:00:00+00:00", "from_stage": "lead", "reason": "价格",
                                   "competitor": ""}
    assert timestamp == "2026-03-01T09:00:00+00:00"


def test_typed_values_become_plain_text_and_instants_utc() -> None:
    stored = orjson.dumps({"occurred_at": {"_type_": "datetime_iso", "_data_": "2026-03-01T17:00:00+08:00"},
                           "when": {"_type_": "date_iso", "_data_": "2026-03-01"},
                           "ids": [{"_type_": "uuid_hex", "_data_": "0123456789abcdef0123456789abcdef"}],
                           "class_version": 2})
    state, _ = plain_state("domain.deal:Deal.Lost", stored)
    assert orjson.loads(state) == {"occurred_at": "2026-03-01T09:00:00+00:00", "when": "2026-03-01",
                                   "ids": ["01234567-89ab-cdef-0123-456789abcdef"]}


def test_a_log_in_memory_is_refused() -> None:
    with pytest.raises(UnsupportedLog, match="in memory"):
        with read_log(database_from_url("memory://")):
            pass


def test_sqlite_rows_are_in_log_order(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    app = CrmApplication(database_from_url(f"sqlite:///{path}"))
    app.ensure_default_pipelines(at(-1))
    app.close()
    with read_log(database_from_url(f"sqlite:///{path}")) as read:
        assert [r["position"] for r in read.table().to_pylist()] == [1, 2, 3]
    assert sqlite3.connect(path).execute("SELECT count(*) FROM stored_events").fetchone() == (3,)
