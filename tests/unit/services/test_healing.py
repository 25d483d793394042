"""The retry loop of the unattended processes, the access log's hidden query values, and the inbound
consumer's rewind after a fault midway through a batch (fakes for Kafka; the real thing is in
tests/integration/test_unattended_processes.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import psycopg
import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition
from typer.testing import CliRunner

from gateways.cli.main import app
from gateways.http.access_log import QueryValuesHidden, without_query_values
from gateways.kafka import inbound as inbound_module
from gateways.kafka.inbound import InboundConsumer
from services.healing import Backoff, Throttled, follow_until_stopped

runner = CliRunner()


def test_backoff_doubles_up_to_the_longest_pause_and_starts_again_after_a_success() -> None:
    backoff = Backoff(0.5, 3)
    assert [backoff.pause() for _ in range(5)] == [0.5, 1, 2, 3, 3]
    assert backoff.reset() == 5 and backoff.pause() == 0.5


def test_a_transient_error_is_logged_and_retried_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stop, calls = threading.Event(), []

    def step() -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        if len(calls) == 4:
            stop.set()
        return 1

    with caplog.at_level(logging.INFO, "services.healing"):
        follow_until_stopped("relay", step, stop, 0, (psycopg.OperationalError,), Backoff(0.01, 0.02))

    assert len(calls) == 4
    messages = [record.getMessage() for record in caplog.records]
    assert messages[1] == ("relay: OperationalError: server closed the connection unexpectedly; retrying in 0.0 s "
                           "(attempt 1)")
    assert "relay: recovered after 2 failed attempts" in messages and messages[-1] == "relay: stopped"


def test_any_other_error_is_logged_and_stops_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    def step() -> int:
        raise KeyError("a bug")

    with pytest.raises(KeyError), caplog.at_level(logging.INFO, "services.healing"):
        follow_until_stopped("inbound", step, threading.Event(), 0, (psycopg.OperationalError,))
    assert "inbound: stopped by an error that retrying cannot mend" in caplog.text


@pytest.mark.parametrize(("target", "logged"), [
    ("/customers?name=%E5%BC%A0%E4%B8%89", "/customers?name=…"),
    ("/funnel?owner=张三&region=华东", "/funnel?owner=…&region=…"),
    ("/health", "/health"),
    ("/x?", "/x"),
    ("/x?张三", "/x?…=…"),
    ("/x?a=1&a=2&flag", "/x?a=…&a=…&flag=…"),
])
def test_the_access_log_keeps_query_names_and_hides_their_values(target: str, logged: str) -> None:
    assert without_query_values(target) == logged


def test_the_access_log_filter_rewrites_uvicorns_record_before_it_is_formatted() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/customers?phone=13800138000", "1.1", 200), None)
    assert QueryValuesHidden().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /customers?phone=… HTTP/1.1" 200'


class FakeConsumer:
    def __init__(self, batch: dict[TopicPartition, list[Any]]) -> None:
        self.batch = batch
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.commit_timeouts: list[int | None] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        return self.batch

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata], timeout_ms: int | None = None) -> None:
        self.commits.append(offsets)
        self.commit_timeouts.append(timeout_ms)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


def _records(partition: TopicPartition, offsets: range) -> list[Any]:
    return [SimpleNamespace(topic=partition.topic, partition=partition.partition, offset=o, key=None,
                            value=str(o).encode(), headers=[]) for o in offsets]


def test_a_database_fault_midway_commits_what_is_done_and_rewinds_to_the_first_message_not_done(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = TopicPartition("crm.inbound", 0), TopicPartition("crm.inbound", 1)
    consumer = FakeConsumer({first: _records(first, range(10, 13)), second: _records(second, range(20, 22))})
    handled = []

    def handle(app: Any, value: bytes, correlation: str) -> None:
        if value == b"12":
            raise psycopg.OperationalError("the database system is shutting down")
        handled.append(value)

    monkeypatch.setattr(inbound_module, "handle", handle)
    worker = InboundConsumer(None, consumer, producer=None)  # type: ignore[arg-type]

    with pytest.raises(psycopg.OperationalError):
        worker.poll_once()

    assert handled == [b"10", b"11"]
    assert consumer.commits == [{first: OffsetAndMetadata(12, "", -1)}]
    assert consumer.seeks == [(first, 12), (second, 20)]  # the next poll starts at 12 and at 20


def test_kafka_clients_chatter_is_throttled_to_one_line_per_message_a_minute() -> None:
    throttled = Throttled("kafka", 60)

    def record(name: str, msg: str, created: float) -> logging.LogRecord:
        made = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("x",), None)
        made.created = created
        return made

    passed = [throttled.filter(record("kafka.conn", "Connection failed: %s", t)) for t in (0, 1, 59, 61)]
    assert passed == [True, False, False, True]
    assert throttled.filter(record("kafka.cluster", "Metadata refresh failed: %s", 1))  # another message
    assert throttled.filter(record("services.healing", "Connection failed: %s", 1))  # not kafka's


def _log_a_retry(log_format: str) -> subprocess.CompletedProcess[str]:
    """A fresh process (logging is configured once per process) that logs one retry line."""
    code = ("import logging; from services.healing import log_to_stderr; log_to_stderr(); "
            "logging.getLogger('crm.relay').warning('retrying in %s s: 张三的连接断了', 0.5)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[3], env={**os.environ, "CRM_LOG_FORMAT": log_format})


def test_unattended_processes_log_one_json_object_per_line_when_asked() -> None:
    result = _log_a_retry("json")

    record = orjson.loads(result.stderr.strip())
    assert (record["levelname"], record["name"]) == ("WARNING", "crm.relay")
    assert record["message"] == "retrying in 0.5 s: 张三的连接断了" and record["asctime"]


def test_unattended_processes_log_text_lines_by_default() -> None:
    assert "WARNING crm.relay: retrying in 0.5 s" in _log_a_retry("text").stderr


def test_an_unknown_log_format_is_refused_with_a_sentence() -> None:
    result = runner.invoke(app, ["projections", "follow"], env={"CRM_LOG_FORMAT": "xml"})

    assert result.exit_code == 1 and "CRM_LOG_FORMAT must be 'text' or 'json'" in result.output


class _Unacknowledged:
    def get(self, timeout: float) -> None:
        raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")


def test_a_failed_dead_letter_renews_the_producer_only_when_the_next_one_is_sent_and_bounds_the_commit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Made at once, in the broker's outage, a new producer blocked ≈ 30 s trying to bootstrap, and the offset
    commit another ≈ 30 s: the retry loop met the outage 80 s late (test_unattended_processes)."""
    partition = TopicPartition("crm.inbound", 0)
    consumer = FakeConsumer({partition: _records(partition, range(3))})
    monkeypatch.setattr(inbound_module, "handle", lambda app, value, correlation: _refuse(value))
    made: list[Any] = []

    def new_producer() -> Any:
        made.append(SimpleNamespace(send=lambda *args, **kwargs: SimpleNamespace(get=lambda timeout: None)))
        return made[-1]

    stale = SimpleNamespace(send=lambda *args, **kwargs: _Unacknowledged(), close=lambda timeout=None: None)
    worker = InboundConsumer(None, consumer, stale, new_producer=new_producer, ack_seconds=2)  # type: ignore[arg-type]

    with pytest.raises(KafkaTimeoutError, match="within 2 s"):
        worker.poll_once()
    assert made == [] and consumer.commit_timeouts == []  # nothing done, so nothing committed
    consumer.batch = {partition: _records(partition, range(3))}
    assert worker.poll_once() == (0, 3)  # the next dead letter made the new producer
    assert len(made) == 1 and consumer.commit_timeouts == [2000]


def _refuse(value: bytes) -> None:
    raise ValueError(f"refused {value!r}")
