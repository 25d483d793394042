"""The unattended processes (projector follow, relay, inbound, import, serve) log one record at every retry,
skip, refusal and stop, with fields a log collector selects on (`component`, `action`, `cause`, …), and
never personal data: no plain personal field (reasons quote no value) and no sealed one (seals are cut)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import orjson
import psycopg
import pytest
from kafka.structs import TopicPartition

from gateways.http import workers
from gateways.kafka.inbound import InboundConsumer
from gateways.kafka.relay import KafkaRelay, RelayStalled
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, WinDeal
from services.healing import Backoff, SealsHidden, follow_until_stopped
from services.history import importer
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.unit.gateways.kafka.test_relay_position import _Producer
from services.history import exporter
from tests.unit.services.test_healing import FakeConsumer
from tests.unit.services.projection_runtime.test_projection_failures import write_unappliable_event

PERSONAL = "王先生的手机13800138000"
SEALED = "pii:v1:7c4f7a9e-2d0b-4c55-9a51-0c2f8f1d6e21:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo"


def logged(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if getattr(record, "action", None) == action]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)


def test_a_retry_logs_one_warning_with_its_cause_and_attempt(caplog: pytest.LogCaptureFixture) -> None:
    stop, calls = threading.Event(), []

    def step() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("the database system is starting up")
        stop.set()
        return 1

    with caplog.at_level(logging.INFO):
        follow_until_stopped("projections follow", step, stop, 0, (psycopg.OperationalError,), Backoff(0.01, 0.01))

    [retry] = logged(caplog, "retry")
    assert retry.levelno == logging.WARNING and retry.component == "projections follow"  # type: ignore[attr-defined]
    assert (retry.cause, retry.attempt, retry.pause_seconds) == ("OperationalError", 1, 0.01)  # type: ignore[attr-defined]


def test_a_stop_logs_one_record_and_a_stop_by_an_error_says_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    stopped = threading.Event()
    stopped.set()
    with caplog.at_level(logging.INFO):
        follow_until_stopped("relay", lambda: 0, stopped, 0, ())
        with pytest.raises(KeyError):
            follow_until_stopped("inbound", lambda: {}["a bug"], threading.Event(), 0, ())

    calm, broken = logged(caplog, "stop")
    assert (calm.levelno, calm.component, calm.cause) == (logging.INFO, "relay", None)  # type: ignore[attr-defined]
    assert (broken.levelno, broken.component, broken.cause) == (  # type: ignore[attr-defined]
        logging.ERROR, "inbound", "KeyError")


def test_a_read_model_stopped_then_passed_by_logs_one_record_each(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))
    store = ReadModelStore(app.database)
    position = app.event_count() + 1
    write_unappliable_event(app)
    projector = projector_for(app, store, ["funnel"])
    with caplog.at_level(logging.INFO):
        projector.catch_up(strict=False)
        projector.resume("funnel", skip=True)
    store.close()
    app.close()

    [stopped], [skipped] = logged(caplog, "stop_read_model"), logged(caplog, "skip")
    assert (stopped.levelno, stopped.read_model, stopped.position, stopped.event_type) == (  # type: ignore[attr-defined]
        logging.ERROR, "funnel", position, "Lead.Assigned")
    assert (skipped.levelno, skipped.read_model, skipped.position) == (  # type: ignore[attr-defined]
        logging.WARNING, "funnel", position)


def test_a_relay_publish_failure_logs_one_warning(crm: CrmApplication, caplog: pytest.LogCaptureFixture) -> None:
    crm.register_customer(RegisterCustomer(PERSONAL, "华东", "零售", "web"), at(0))
    relay = KafkaRelay(crm, ReadModelStore(database_from_url("memory://")), _Producer(fail_after=0))  # type: ignore[arg-type]

    with caplog.at_level(logging.INFO), pytest.raises(RelayStalled):
        relay.run_batch()

    [failed] = logged(caplog, "publish_failed")
    assert (failed.levelno, failed.position, failed.events, failed.cause) == (  # type: ignore[attr-defined]
        logging.WARNING, 0, crm.event_count(), "TimeoutError")
    assert "王先生" not in everything_logged(caplog)


class _Acknowledged:
    def get(self, timeout: float) -> None:
        return None


def test_an_inbound_refusal_logs_one_warning_with_its_reason_and_no_personal_data(
        crm: CrmApplication, caplog: pytest.LogCaptureFixture) -> None:
    partition = TopicPartition("crm.inbound", 0)
    message = {"type": "touch", "source": "crm-test", "customer_id": PERSONAL, "channel": "phone",
               "direction": "inbound", "summary": PERSONAL}
    record = SimpleNamespace(topic=partition.topic, partition=0, offset=7, key=None, value=orjson.dumps(message),
                             headers=[])
    producer = SimpleNamespace(send=lambda *args, **kwargs: _Acknowledged())
    consumer = InboundConsumer(crm, FakeConsumer({partition: [record]}), producer)  # type: ignore[arg-type]

    with caplog.at_level(logging.INFO):
        assert consumer.poll_once() == (0, 1)

    [refusal] = logged(caplog, "refusal")
    assert (refusal.levelno, refusal.component, refusal.origin) == (  # type: ignore[attr-defined]
        logging.WARNING, "inbound", "crm.inbound/0/7")
    assert "customer_id" in refusal.reason  # type: ignore[attr-defined]
    assert "王先生" not in everything_logged(caplog) and "13800138000" not in everything_logged(caplog)


@pytest.fixture
def history(crm: CrmApplication, tmp_path: Path) -> Path:
    """An exported log of a customer with two deals, one won (the default pipelines' events first)."""
    customer = crm.register_customer(RegisterCustomer(PERSONAL, "华东", "零售", "web"), at(0))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "增购", "1000", owner="李娜"), at(1))), at(2))
    crm.open_deal(OpenDeal(customer, "续约", "500", owner="李娜"), at(3))
    path = tmp_path / "history.jsonl"
    with path.open("wb") as out:
        exporter.export_history(crm, out)
    return path


@pytest.fixture
def target(tmp_path: Path) -> Iterator[CrmApplication]:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'target.db'}"))
    yield app
    app.close()


def test_an_import_refusal_logs_the_line_and_its_reason_without_the_value(
        history: Path, target: CrmApplication, caplog: pytest.LogCaptureFixture) -> None:
    lines = [orjson.loads(line) for line in history.read_bytes().splitlines()]
    opened = next(i for i, line in enumerate(lines) if line["type"] == "crm.Deal.Opened")
    lines[opened]["data"]["amount"] = PERSONAL
    history.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))

    with caplog.at_level(logging.INFO), pytest.raises(importer.ImportRefused):
        importer.import_history(target, history, batch=2)

    [refusal] = logged(caplog, "refusal")
    assert (refusal.levelno, refusal.line) == (logging.WARNING, opened + 1)  # type: ignore[attr-defined]
    assert refusal.reason == "field 'amount': '…' is not a decimal number"  # type: ignore[attr-defined]
    assert "王先生" not in everything_logged(caplog) and "13800138000" not in everything_logged(caplog)


def test_an_import_logs_each_batch_written_at_info_and_its_end(history: Path, target: CrmApplication,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        written = importer.import_history(target, history, batch=4)

    batches, [end] = logged(caplog, "batch"), logged(caplog, "stop")
    assert {b.levelno for b in batches} == {logging.INFO} and len(batches) == -(-written // 4)
    assert [b.batch for b in batches] == list(range(1, len(batches) + 1))  # type: ignore[attr-defined]
    assert sum(b.events for b in batches) == written == end.total  # type: ignore[attr-defined]
    assert "王先生" not in everything_logged(caplog)


def test_serve_logs_its_start_each_replaced_worker_and_its_stop_not_the_workers_it_stops(
        caplog: pytest.LogCaptureFixture) -> None:
    running = SimpleNamespace(LISTENERS=["socket"], cfg=SimpleNamespace(workers=3, bind=["127.0.0.1:8000"]))
    stopping = SimpleNamespace(LISTENERS=[], cfg=running.cfg)
    with caplog.at_level(logging.INFO):
        workers._on_starting(running)
        workers._on_worker_exit(running, SimpleNamespace(pid=4242))
        workers._on_worker_exit(stopping, SimpleNamespace(pid=4343))
        workers._on_exit(stopping)

    assert [(r.action, r.levelno) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("start", logging.INFO), ("restart", logging.WARNING), ("stop", logging.INFO)]
    assert logged(caplog, "restart")[0].pid == 4242  # type: ignore[attr-defined]


def test_a_sealed_value_is_cut_from_the_message_and_the_fields() -> None:
    record = logging.LogRecord("services.x", logging.ERROR, __file__, 1, "cannot apply: bad name ⟦%s⟧", (SEALED,),
                               None)
    record.reason = f"got ⟦{SEALED}⟧"

    assert SealsHidden().filter(record)

    ciphertext = SEALED.rsplit(":", 1)[1]
    assert ciphertext not in record.getMessage() and ciphertext not in record.reason
    assert "pii:v1:7c4f7a9e-2d0b-4c55-9a51-0c2f8f1d6e21:…" in record.getMessage()


def test_in_json_each_record_carries_its_fields_and_no_seal() -> None:
    code = ("import logging, threading; from services.healing import log_to_stderr, follow_until_stopped; "
            "log_to_stderr(); stop = threading.Event(); stop.set(); "
            "follow_until_stopped('relay', lambda: 0, stop, 0, ()); "
            f"logging.getLogger('services.x').error('cannot apply', extra={{'reason': '⟦{SEALED}⟧'}})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[3], env={**os.environ, "CRM_LOG_FORMAT": "json"})

    started, stopped, failed = (orjson.loads(line) for line in result.stderr.strip().splitlines())
    assert (started["component"], started["action"], stopped["action"]) == ("relay", "start", "stop")
    assert SEALED.rsplit(":", 1)[1] not in failed["reason"] and failed["reason"].endswith(":…⟧")
