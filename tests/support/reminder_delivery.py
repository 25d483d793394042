"""Shared by the reminder delivery tests (tests/integration/test_reminder_delivery.py, test_broker_outage.py) and
the benchmark: a PostgreSQL log with sub-second thresholds, a relay to temporary topics, the topic read back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from domain.base import Meta
from domain.reminder_rules import Reminder
from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, SetStageReminders
from services.storage.read_model_store import ReadModelStore
from tests.support.topics import read_topic

REPO = Path(__file__).resolve().parents[2]
SECOND = 1 / 86_400  # a day's fraction: thresholds of seconds keep these tests to seconds


def set_thresholds(crm: CrmApplication, seconds: list[float], stage: str = "lead") -> None:
    crm.set_stage_reminders(SetStageReminders("sales", stage, [s * SECOND for s in seconds]), Meta.now("admin"))


def open_deals(crm: CrmApplication, count: int, owner: str = "李娜") -> list[Any]:
    """`count` deals in the sales pipeline's first stage, each of its own customer, opened now."""
    deals = []
    for n in range(count):
        customer = crm.register_customer(RegisterCustomer(f"客户{n}", "华东", "零售", "web", company=f"公司{n}"),
                                         Meta.now(owner))
        deals.append(crm.open_deal(OpenDeal(customer, f"商机{n}", "1000", owner=owner), Meta.now(owner)))
    return deals


def logged_reminders(crm: CrmApplication) -> list[Reminder.Emitted]:
    return [event for _, event in crm.read_log() if isinstance(event, Reminder.Emitted)]


def start_cli(*args: str, url: str) -> subprocess.Popen:
    """`python *args` (e.g. `-m gateways.cli.main reminders run`) on the log at `url`, output piped as text."""
    env = {**os.environ, "CRM_DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@contextmanager
def running(noun: str, url: str) -> Iterator[None]:
    """`crm <noun> run --poll 0.05` (reminders, segments) on the log at `url`, from its "started" line until the
    block ends; then stopped by SIGTERM, which it must answer by exiting 0."""
    process = start_cli("-m", "gateways.cli.main", noun, "run", "--poll", "0.05", url=url)
    try:
        assert process.stdout is not None and any(f"{noun}: started" in line for line in process.stdout)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def relaying(crm: CrmApplication, bootstrap: str, events: str, reminders: str | None,
             max_backoff: float = 1.0, segments: str | None = None) -> Iterator[KafkaRelay]:
    """A relay following the log into `events`, `reminders` and `segments` (None: none) in a thread, stopped on
    exit."""
    store = ReadModelStore(crm.database)
    producer = producer_for(bootstrap)
    relay = KafkaRelay(crm, store, producer, topic=events, reminders_topic=reminders, segments_topic=segments,
                       new_producer=lambda: producer_for(bootstrap))
    stop = threading.Event()
    thread = threading.Thread(target=relay.follow, args=(stop, 0.02, max_backoff), name="test-relay")
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(30)
        relay.producer.close()
        store.close()


def delivered(bootstrap: str, topic: str) -> list[tuple[str, str, int, str]]:
    """(ce_id, key, partition, ce_type) of every message the topic holds."""
    return [(decode_headers(m.headers)["ce_id"], m.key.decode(), m.partition, decode_headers(m.headers)["ce_type"])
            for m in read_topic(bootstrap, topic)]
