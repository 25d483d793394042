"""Forgetting reaches every copy, on the real PostgreSQL and Kafka: after `crm customer forget`, none of the
person's strings is in a dump of the whole database (log, read models, keys, idempotency answers), in
`crm export`, in any HTTP answer about them, in `crm.events` or the DLQ read back with a consumer, or in
the logs — while before, authorised readers saw all of it."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from gateways.http.app import create_app
from domain.partitions import PARTITIONS
from domain.segment_change_rules import SegmentChange
from gateways.kafka.inbound import DLQ_RETENTION_MS, InboundConsumer, consumer_for, ensure_dlq_topic
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.commands import ForgetCustomer, RegisterCustomer
from services.projection_runtime.registry import projector_for
from services.segment_process import SegmentChangeProcess
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.forgetting import SECRETS, leaked, record_person, record_someone_else
from tests.unit.gateways.http.conftest import auth, registry

from tests.support import running_services as services


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[tuple[str, str, str]]:
    with services.temporary_topic(kafka_bootstrap, PARTITIONS) as events, \
            services.temporary_topic(kafka_bootstrap, 1) as inbound, \
            services.temporary_topic(kafka_bootstrap, 1) as dlq:
        yield events, inbound, dlq


def _read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every message of the topic, key, value and headers, as bytes."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000, group_id=None)
    found = [b"|".join([m.key or b"", m.value or b"", *(name.encode() + b"=" + value for name, value in m.headers)])
             for m in consumer]
    consumer.close()
    return found


def _inbound(crm: CrmApplication, bootstrap: str, inbound: str, dlq: str, customer: str) -> None:
    """A touch from another system, and two refused messages carrying the person's text."""
    messages = [
        {"type": "touch", "source": "web-tracking", "customer_id": customer, "channel": "web",
         "direction": "inbound", "summary": SECRETS["inbound touch"]},
        {"type": "touch", "source": "fax-gateway", "customer_id": customer, "channel": "fax",
         "direction": "inbound", "summary": SECRETS["refused inbound"]},
        {"type": "touch", "source": "web-tracking", "customer_id": customer, "channel": "web",
         "direction": "inbound", "summary": SECRETS["refused inbound"] * 300},  # too long: the reason must not quote it
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for message in messages:
        producer.send(inbound, value=orjson.dumps(message))
    producer.flush()
    consumer = consumer_for(bootstrap, inbound, group=f"g-{inbound}")
    worker = InboundConsumer(crm, consumer, producer, dlq_topic=dlq)
    done = 0
    for _ in range(40):
        done += sum(worker.poll_once(500))
        if done == len(messages):
            break
    consumer.close()
    producer.close()
    assert done == len(messages)


def _relay_and_project(crm: CrmApplication, store: ReadModelStore, bootstrap: str, topic: str) -> None:
    process = SegmentChangeProcess(crm, store)  # `crm segments run`: tiers announced (after forgetting: left)
    process.run_step()
    process.run_step()
    producer = producer_for(bootstrap)
    relay = KafkaRelay(crm, store, producer, topic=topic)
    while relay.run_batch():
        pass
    producer.close()
    projector_for(crm, store).catch_up()


def _http_answers(client: TestClient, ids: dict[str, str]) -> dict[str, str]:
    paths = [f"/customers/{ids['customer']}", f"/customers/{ids['customer']}/timeline", f"/leads/{ids['lead']}",
             f"/deals/{ids['deal']}", f"/deals/{ids['deal']}/history", f"/tickets/{ids['ticket']}",
             "/reports/tickets?as_of=2026-12-31T00:00:00Z", f"/segments/customers/{ids['customer']}"]
    answers = {}
    for path in paths:
        response = client.get(path, headers=auth("admin"))
        assert response.status_code in (200, 404) if path.startswith("/segments") else response.status_code == 200, (
            path, response.text)
        answers[path] = response.text
    return answers


def _dump_database(url: str) -> bytes:
    return subprocess.run(["pg_dump", "--data-only", "--no-owner", url], check=True, capture_output=True,
                          timeout=120).stdout


def _every_table(url: str) -> dict[str, str]:
    """Every row of every table of every schema (the log's and the application's own), as text."""
    with psycopg.connect(url) as connection:
        tables = connection.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
        assert len(tables) > 20, tables  # the log, the keys, the receipts and every read model
        return {f"{schema}.{name}": "\n".join(
            row for (row,) in connection.execute(f'SELECT t::text FROM "{schema}"."{name}" t'))
            for schema, name in tables}


def test_after_forgetting_no_string_of_the_person_is_left_anywhere(
        pg_database: str, kafka_bootstrap: str, topics: tuple[str, str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # every library at INFO (kafka-python's DEBUG dumps raw wire bytes)
    for ours in ("domain", "services", "projections", "gateways"):
        caplog.set_level(logging.DEBUG, logger=ours)
    events_topic, inbound, dlq = topics
    ensure_dlq_topic(kafka_bootstrap, dlq)
    database = database_from_url(pg_database)
    api = create_app(database, registry())
    with TestClient(api) as client:
        crm: CrmApplication = api.state.crm
        events_table = crm.recorder.events_table_name.split(".")[-1]
        store = ReadModelStore(database)
        ids = {name: str(value) for name, value in record_person(crm).items()}
        other = record_someone_else(crm)
        registered = client.post("/customers", headers={**auth("sales"), "Idempotency-Key": "k-1"},
                                 json={"name": "韩梅梅", "region": "华东", "industry": "教育", "channel": "web"})
        assert registered.status_code == 201, registered.text
        refused = client.post(f"/customers/{ids['customer']}/tags", json={"tag": SECRETS["tag"]},
                              headers={**auth("sales"), "Idempotency-Key": "k-2"})  # its answer is kept for retries
        assert refused.status_code == 422, refused.text
        _inbound(crm, kafka_bootstrap, inbound, dlq, ids["customer"])
        _relay_and_project(crm, store, kafka_bootstrap, events_topic)

        before = _http_answers(client, ids)
        published = _read_topic(kafka_bootstrap, events_topic)
        seals = [value for message in published for value in orjson.loads(message.split(b"|")[1]).values()
                 if isinstance(value, str) and value.startswith("pii:v1:")]
        opened = client.post("/personal-data/open", headers=auth("admin"), json={"sealed": seals}).json()["plain"]
        everything_before = "\n".join([*before.values(), *opened])
        assert len(leaked(everything_before, "before")) == len(SECRETS) - 1  # all but the refused message's text
        assert not leaked(b"\n".join(published), "crm.events before")  # Kafka never had the text in clear

        monkeypatch.setenv("CRM_DATABASE_URL", pg_database)
        forgotten = CliRunner().invoke(cli, ["customer", "forget", ids["customer"]])
        assert forgotten.exit_code == 0, forgotten.output
        time.sleep(crm.keys.recheck + 0.1)  # the API cached the keys; it learns of the forgetting within a second
        _relay_and_project(crm, store, kafka_bootstrap, events_topic)
        assert [(e.old_tier, e.new_tier) for _, e in crm.read_log() if isinstance(e, SegmentChange.Recorded)
                and str(e.customer_id) == ids["customer"]][-1][1] == ""  # left every tier, on crm.events too
        exported = CliRunner().invoke(cli, ["export", str(tmp_path / "history.jsonl")])
        assert exported.exit_code == 0, exported.output

        after = _http_answers(client, ids)
        reopened = client.post("/personal-data/open", headers=auth("admin"), json={"sealed": seals}).json()["plain"]
        other_customer = client.get(f"/customers/{other}", headers=auth("admin")).json()
        store.close()

    every_table = _every_table(pg_database)
    assert any(name.endswith(f".{events_table}") for name in every_table), every_table.keys()  # the log itself
    found = [*(problem for path, text in after.items() for problem in leaked(text, f"HTTP {path}")),
             *leaked("\n".join(reopened), "opened seals"),
             *leaked(_dump_database(pg_database), "pg_dump"),
             *(problem for table, text in every_table.items() for problem in leaked(text, table)),
             *leaked((tmp_path / "history.jsonl").read_bytes(), "crm export"),
             *leaked(b"\n".join(_read_topic(kafka_bootstrap, events_topic)), "crm.events"),
             *leaked(b"\n".join(_read_topic(kafka_bootstrap, dlq)), "DLQ"),
             *leaked("\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records), "logs"),
             *leaked(forgotten.output + exported.output, "CLI output")]
    assert found == []
    assert "(forgotten)" in reopened and "李雷" in reopened  # the person's seals went blind, no one else's
    assert '"(forgotten)"' in after[f"/customers/{ids['customer']}"]
    assert other_customer["email"] == "lilei@example.com"  # nobody else was touched


def test_the_dlq_keeps_what_an_operator_needs_and_has_a_retention(
        crm_pg: CrmApplication, kafka_bootstrap: str, topics: tuple[str, str, str]) -> None:
    _, inbound, dlq = topics
    customer = str(crm_pg.register_customer(RegisterCustomer("甄试名", "华东", "零售", "web"), at(0)))
    ensure_dlq_topic(kafka_bootstrap, dlq)
    ensure_dlq_topic(kafka_bootstrap, dlq)  # a second start finds it and sets the retention again

    _inbound(crm_pg, kafka_bootstrap, inbound, dlq, customer)

    letters = [orjson.loads(message.split(b"|")[1]) for message in _read_topic(kafka_bootstrap, dlq)]
    assert letters[0] == {"type": "touch", "source": "fax-gateway", "customer_id": customer,
                          "channel": {"removed": 3}, "direction": "inbound",
                          "summary": {"removed": len(SECRETS["refused inbound"])}}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, dlq)])
    admin.close()
    assert described["topic"][dlq]["retention.ms"]["value"] == str(DLQ_RETENTION_MS)



@pytest.mark.parametrize("jobs", [1, 2])  # 2: worker processes encode chunks, a deal's events in several
def test_a_person_imported_into_postgres_is_forgotten_everywhere(pg_database: str, tmp_path: Path,
                                                                 jobs: int) -> None:
    from services.history import importer
    from services.history.exporter import export_history

    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    source.ensure_default_pipelines(at(-1))
    ids = record_person(source)
    with (tmp_path / "history.jsonl").open("wb") as out:
        export_history(source, out)
    source.close()
    target = CrmApplication(database_from_url(pg_database))
    importer.import_history(target, tmp_path / "history.jsonl", batch=3, jobs=jobs)
    store = ReadModelStore(target.database)
    projector_for(target, store).catch_up()

    target.forget_customer(ForgetCustomer(ids["customer"]), at(20, "dpo"))
    projector_for(target, store).catch_up()
    store.close()
    target.close()

    reader = CrmApplication(database_from_url(pg_database))  # what any process can still open
    opened = orjson.dumps([vars(event) for _, event in reader.read_log()], default=str)
    reader.close()
    assert leaked(opened, "the log, opened") == [] and leaked(_dump_database(pg_database), "pg_dump") == []
