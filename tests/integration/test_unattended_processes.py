"""`crm relay`, `crm projections follow` and `crm inbound` as real processes, across a PostgreSQL restart and
(inbound) a broker outage: nothing is lost, each says in its log that it is retrying, and it is still
running afterwards. `crm inbound --once` handles what the topic holds and exits 0.

These tests stop and start the services through deploy/ (services.run_deploy): run them only against
private instances (CRM_STATE_DIR, CRM_PG_PORT, CRM_KAFKA_PORT, CRM_KAFKA_CONTROLLER_PORT), never shared ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from domain.customer import Customer
from gateways.kafka.cloudevents import decode_headers
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at

from tests.support import running_services as services

CRM = [sys.executable, "-m", "gateways.cli.main"]
REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def crm_process(folder: Path, *args: str, url: str, bootstrap: str = "") -> Iterator[subprocess.Popen]:
    """`crm <args>` running in the background (output in folder/crm.log); stopped by SIGTERM afterwards,
    which it must obey with exit status 0."""
    log = (folder / "crm.log").open("wb")
    process = subprocess.Popen([*CRM, *args], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "CRM_DATABASE_URL": url, "CRM_KAFKA_BOOTSTRAP": bootstrap})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, _log(folder)


def _log(folder: Path) -> str:
    return (folder / "crm.log").read_text(errors="replace")


def _wait(condition: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen | None = None,
          folder: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        if process is not None:
            assert process.poll() is None, f"the process exited while waiting for {what}: {_log(folder)}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (f": {_log(folder)}" if folder else "")
        time.sleep(0.2)


def _holds(condition: Callable[[], bool]) -> bool:
    """The condition, or False while the database it reads is still coming back."""
    try:
        return condition()
    except Exception:
        return False


def _restart_postgres(process: subprocess.Popen, folder: Path, during: Callable[[], None] = lambda: None) -> None:
    """Stop PostgreSQL, do `during`, wait until the process has met the outage (it logs a retry), start it."""
    services.run_deploy("postgres.sh", "stop", timeout=120)
    try:
        during()
        _wait(lambda: "retrying in" in _log(folder), 120, "the process to meet the outage", process, folder)
    finally:
        services.run_deploy("postgres.sh", "start", timeout=300)


def _register(crm: CrmApplication, names: list[str]) -> list[UUID]:
    """Register customers, retrying while the application's connections come back after a restart."""
    registered = []
    for name in names:
        deadline = time.monotonic() + 60
        while True:
            try:
                registered.append(crm.register_customer(RegisterCustomer(name, "华东", "零售", "web"), at(1)))
                break
            except Exception:
                assert time.monotonic() < deadline, "the database did not come back"
                time.sleep(0.5)
    return registered


def _position(url: str, name: str) -> int:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as connection:
        row = connection.execute("SELECT position FROM projection_positions WHERE name = %s", (name,)).fetchone()
        return row[0] if row else -1


def test_the_relay_process_rides_out_a_postgresql_restart(crm_pg: CrmApplication, kafka_bootstrap: str,
                                                          kafka_topic: str, tmp_path: Path) -> None:
    url = crm_pg.database.url
    _register(crm_pg, [f"客户{n}" for n in range(10)])
    with crm_process(tmp_path, "relay", "--topic", kafka_topic, url=url, bootstrap=kafka_bootstrap) as relay:
        _wait(lambda: _position(url, "kafka-relay") == crm_pg.event_count(), 60, "the relay to publish", relay,
              tmp_path)
        _restart_postgres(relay, tmp_path)
        _register(crm_pg, [f"重启后客户{n}" for n in range(10)])
        _wait(lambda: _position(url, "kafka-relay") == crm_pg.event_count(), 120, "the relay to catch up", relay,
              tmp_path)
        assert relay.poll() is None
    assert "relay: " in _log(tmp_path) and "retrying in" in _log(tmp_path)

    consumer = KafkaConsumer(kafka_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    delivered = {decode_headers(m.headers)["ce_id"] for m in consumer}
    consumer.close()
    assert delivered == {f"{e.originator_id}:{e.originator_version}" for _, e in crm_pg.read_log()}


def test_the_projections_follower_process_rides_out_a_postgresql_restart(crm_pg: CrmApplication,
                                                                         tmp_path: Path) -> None:
    url = crm_pg.database.url
    _register(crm_pg, [f"客户{n}" for n in range(10)])
    with crm_process(tmp_path, "projections", "follow", "--poll", "0.1", url=url) as follower:
        _wait(lambda: _position(url, "timeline") == crm_pg.event_count(), 60, "the follower to catch up", follower,
              tmp_path)
        _restart_postgres(follower, tmp_path)
        _register(crm_pg, [f"重启后客户{n}" for n in range(10)])
        _wait(lambda: _position(url, "timeline") == crm_pg.event_count(), 120, "the follower to catch up again",
              follower, tmp_path)
        assert follower.poll() is None
    assert "projections follow: " in _log(tmp_path) and "retrying in" in _log(tmp_path)

    store = ReadModelStore(crm_pg.database)
    projector = projector_for(crm_pg, store)
    assert all(state.lag == 0 for state in projector.status())
    instant = max(e.occurred_at for _, e in crm_pg.read_log())
    followed = summaries(crm_pg, store, instant)
    projector.rebuild()
    assert followed == summaries(crm_pg, store, instant)  # nothing lost, nothing counted twice
    store.close()


@pytest.fixture
def inbound_topics(kafka_bootstrap: str) -> Iterator[tuple[str, str]]:
    with services.temporary_topic(kafka_bootstrap, 1) as inbound, services.temporary_topic(kafka_bootstrap, 1) as dlq:
        yield inbound, dlq


def _send_touches(bootstrap: str, topic: str, customer: UUID, summaries_: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for summary in summaries_:
        producer.send(topic, value=orjson.dumps({"type": "touch", "source": "web-tracking", "channel": "web",
                                                 "customer_id": str(customer), "direction": "inbound",
                                                 "summary": summary}))
    producer.flush()
    producer.close()


def _touches(crm: CrmApplication, customer: UUID) -> int:
    return sum(isinstance(event, Customer.TouchLogged) for event in crm.history(customer))


def _dead_letters(bootstrap: str, dlq: str) -> int:
    consumer = KafkaConsumer(dlq, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    count = sum(1 for _ in consumer)
    consumer.close()
    return count


def _inbound(folder: Path, url: str, bootstrap: str, topics: tuple[str, str], *more: str):
    inbound, dlq = topics
    return crm_process(folder, "inbound", "--topic", inbound, "--dlq", dlq, "--group", f"g-{inbound}", *more,
                       url=url, bootstrap=bootstrap)


def test_the_inbound_process_rides_out_a_postgresql_restart(crm_pg: CrmApplication, kafka_bootstrap: str,
                                                            inbound_topics: tuple[str, str], tmp_path: Path) -> None:
    url = crm_pg.database.url
    [customer] = _register(crm_pg, ["张三"])
    with _inbound(tmp_path, url, kafka_bootstrap, inbound_topics) as inbound:
        _send_touches(kafka_bootstrap, inbound_topics[0], customer, [f"访问{n}" for n in range(5)])
        _wait(lambda: _touches(crm_pg, customer) == 5, 60, "the first touches", inbound, tmp_path)
        _restart_postgres(inbound, tmp_path, lambda: _send_touches(
            kafka_bootstrap, inbound_topics[0], customer, [f"停机时访问{n}" for n in range(5)]))
        _wait(lambda: _touches(crm_pg, customer) == 10, 120, "the touches sent during the outage", inbound, tmp_path)
        time.sleep(1)
        assert inbound.poll() is None
    assert _touches(crm_pg, customer) == 10
    assert _dead_letters(kafka_bootstrap, inbound_topics[1]) == 0  # an outage is no reason to dead-letter
    assert "inbound: " in _log(tmp_path) and "retrying in" in _log(tmp_path)


def test_the_inbound_process_rides_out_a_broker_outage_in_the_middle_of_its_work(
        crm_pg: CrmApplication, kafka_bootstrap: str, inbound_topics: tuple[str, str], tmp_path: Path) -> None:
    """The broker stops while the consumer still handles messages it fetched: their dead letters and offset
    commits fail until the broker is back; every message is then handled (at least once), none is lost."""
    inbound, dlq = inbound_topics
    customers = _register(crm_pg, [f"客户{n}" for n in range(200)])
    sent = {f"访问{c}-{n}" for c in range(len(customers)) for n in range(10)}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
    for n in range(10):
        for c, customer in enumerate(customers):
            producer.send(inbound, value=orjson.dumps({"type": "touch", "source": "web", "customer_id": str(customer),
                                                       "channel": "web", "direction": "inbound",
                                                       "summary": f"访问{c}-{n}"}))
            if c % 20 == 0:
                producer.send(inbound, value=f"not json {c}-{n}".encode())
    producer.flush()
    producer.close()
    head = crm_pg.event_count()
    # 5 s rather than 30 s per unanswered wait on the broker: the outage is met and left sooner (−80 s here)
    with _inbound(tmp_path, crm_pg.database.url, kafka_bootstrap, inbound_topics, "--ack-timeout", "5") as process:
        _wait(lambda: crm_pg.event_count() > head, 60, "the first touches", process, tmp_path)
        services.run_deploy("kafka.sh", "stop", timeout=120)
        try:
            _wait(lambda: "retrying in" in _log(tmp_path), 120, "the consumer to meet the outage", process, tmp_path)
        finally:
            services.run_deploy("kafka.sh", "start", timeout=300)
        _wait(lambda: crm_pg.event_count() >= head + len(sent) and _dead_letters(kafka_bootstrap, dlq) >= 100, 300,
              "every message to be handled", process, tmp_path)
        assert process.poll() is None
    logged = {event.summary for customer in customers for event in crm_pg.history(customer)
              if isinstance(event, Customer.TouchLogged)}
    assert logged == sent


def test_inbound_once_handles_what_the_topic_holds_then_exits_0(crm_pg: CrmApplication, kafka_bootstrap: str,
                                                               inbound_topics: tuple[str, str], tmp_path: Path) -> None:
    [customer] = _register(crm_pg, ["王五"])
    _send_touches(kafka_bootstrap, inbound_topics[0], customer, [f"访问{n}" for n in range(3)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(inbound_topics[0], value=b"{broken json")
    producer.flush()
    producer.close()
    inbound, dlq = inbound_topics

    done = subprocess.run([*CRM, "inbound", "--topic", inbound, "--dlq", dlq, "--group", f"g-{inbound}", "--once"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CRM_DATABASE_URL": crm_pg.database.url,
                               "CRM_KAFKA_BOOTSTRAP": kafka_bootstrap})

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Handled 3 messages" in done.stdout and "1 dead-lettered" in done.stdout
    assert _touches(crm_pg, customer) == 3 and _dead_letters(kafka_bootstrap, dlq) == 1
    again = subprocess.run([*CRM, "inbound", "--topic", inbound, "--dlq", dlq, "--group", f"g-{inbound}", "--once"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "CRM_DATABASE_URL": crm_pg.database.url,
                                "CRM_KAFKA_BOOTSTRAP": kafka_bootstrap})
    assert again.returncode == 0 and "Handled 0 messages" in again.stdout  # the offsets were committed


def test_relay_follower_and_inbound_started_while_postgresql_is_down_wait_for_it(
        crm_pg: CrmApplication, kafka_bootstrap: str, kafka_topic: str, inbound_topics: tuple[str, str],
        tmp_path: Path) -> None:
    url = crm_pg.database.url
    [customer] = _register(crm_pg, ["赵六"])
    folders = {name: tmp_path / name for name in ("relay", "follow", "inbound")}
    for folder in folders.values():
        folder.mkdir()
    services.run_deploy("postgres.sh", "stop", timeout=120)
    try:
        with crm_process(folders["relay"], "relay", "--topic", kafka_topic, url=url,
                         bootstrap=kafka_bootstrap) as relay, \
                crm_process(folders["follow"], "projections", "follow", "--poll", "0.1", url=url) as follower, \
                _inbound(folders["inbound"], url, kafka_bootstrap, inbound_topics) as inbound:
            processes = {"relay": relay, "follow": follower, "inbound": inbound}
            for name, process in processes.items():
                _wait(lambda: "cannot start yet" in _log(folders[name]), 60, f"{name} to wait", process, folders[name])
            services.run_deploy("postgres.sh", "start", timeout=300)
            _send_touches(kafka_bootstrap, inbound_topics[0], customer, ["上线后访问"])
            _wait(lambda: _touches(crm_pg, customer) == 1, 120, "inbound to handle the touch", inbound,
                  folders["inbound"])
            _wait(lambda: _position(url, "kafka-relay") == crm_pg.event_count(), 120, "the relay to publish", relay,
                  folders["relay"])
            _wait(lambda: _position(url, "timeline") == crm_pg.event_count(), 120, "the follower to catch up",
                  follower, folders["follow"])
            assert all(process.poll() is None for process in processes.values())
    finally:
        services.run_deploy("postgres.sh", "start", timeout=300)
