"""kill -9 the projector and the Kafka relay in the middle of their work, restart them: the read models
equal a clean rebuild, and every event reaches Kafka (redeliveries only with the same ce_id)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer

from gateways.kafka.cloudevents import decode_headers
from services.application import CrmApplication
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url

CRM = [sys.executable, "-m", "gateways.cli.main"]


@pytest.fixture
def history(pg_database: str) -> Iterator[CrmApplication]:
    app = CrmApplication(database_from_url(pg_database))
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=11, leads=2500, days=500)).run()
    yield app
    app.close()


def _start(*args: str, url: str) -> subprocess.Popen:
    return subprocess.Popen([*CRM, *args], env={**os.environ, "CRM_DATABASE_URL": url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(process: subprocess.Popen, moved: callable, timeout: float = 60) -> None:
    """SIGKILL the process as soon as `moved()` says it is part-way through."""
    deadline = time.monotonic() + timeout
    while not moved():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the process never got going"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_killed_projector_resumes_to_the_same_read_models_as_a_clean_rebuild(history: CrmApplication) -> None:
    url = history.database.url
    store = ReadModelStore(history.database)
    projector = projector_for(history, store)
    head = history.event_count()

    follower = _start("projections", "follow", "--batch", "1000", url=url)
    _kill_when(follower, lambda: 0 < min(projector.positions().values()) < head)
    killed_at = min(projector.positions().values())
    assert 0 < killed_at < head

    restarted = _start("projections", "follow", url=url)
    deadline = time.monotonic() + 120
    while any(s.lag for s in projector.status()):
        assert time.monotonic() < deadline and restarted.poll() is None
        time.sleep(0.05)
    restarted.send_signal(signal.SIGTERM)
    restarted.wait(timeout=10)

    instants = [e.occurred_at for _, e in history.read_log()][:: head // 4]
    resumed = [summaries(history, store, t) for t in instants]
    projector.rebuild()
    assert resumed == [summaries(history, store, t) for t in instants]
    store.close()


def test_killed_relay_delivers_every_event_at_least_once(history: CrmApplication, kafka_bootstrap: str,
                                                         kafka_topic: str) -> None:
    url, head = history.database.url, history.event_count()
    store = ReadModelStore(history.database)
    projector_for(history, store)  # creates the table where the relay keeps its position
    position = lambda: store.query(  # noqa: E731
        "SELECT COALESCE(MAX(position), 0) FROM projection_positions WHERE name = 'kafka-relay'")[0][0]
    relay = _start("relay", "--bootstrap", kafka_bootstrap, "--topic", kafka_topic, url=url)
    _kill_when(relay, lambda: 0 < position() < head)

    again = subprocess.run([*CRM, "relay", "--once", "--bootstrap", kafka_bootstrap, "--topic", kafka_topic],
                           env={**os.environ, "CRM_DATABASE_URL": url}, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()
    assert position() == head

    consumer = KafkaConsumer(kafka_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000, max_poll_records=5000)
    seen: dict[str, int] = {}
    for message in consumer:
        ce_id = decode_headers(message.headers)["ce_id"]
        seen[ce_id] = seen.get(ce_id, 0) + 1
    consumer.close()
    expected = {f"{e.originator_id}:{e.originator_version}" for _, e in history.read_log()}
    assert set(seen) == expected  # nothing lost; a consumer deduplicating by ce_id sees each exactly once
    assert sum(seen.values()) >= len(expected)
    store.close()
