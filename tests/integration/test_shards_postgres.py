"""Three shard databases on the real PostgreSQL: commands land on the shard of their partition, a conversion
stays on one shard, every shard holds the reference data (healed by `crm shards sync` after a process was
killed between two shards), each shard's log stays gap-free, 16 writers spread over the shards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.base import Meta
from domain.partitions import partition_of
from domain.pipeline import DEFAULT_PIPELINES, Pipeline, pipeline_id
from domain.vocabulary import vocabulary_id
from gateways.http.app import create_app
from services.application import ConcurrencyConflict
from services.commands import AssignLead, CaptureLead, ContactLead, ConvertLead, OpenDeal, QualifyLead, RegisterCustomer
from services.commands.vocabularies import AddVocabularyValue
from services.settings import Database, database_from_url
from services.sharding.router import ShardedApplication
from services.sharding.shard_map import ShardMapMismatch, create_map
from services.sharding.shard_settings import SHARD_URLS_VARIABLE
from tests.support import running_services as services
from tests.support.shards import migrated_shards, sharded, shards_holding
from tests.unit.gateways.http.conftest import auth, registry

META = Meta(actor="test")
CRM = [sys.executable, "-m", "gateways.cli.main"]
SALES = auth("sales")


@pytest.fixture(scope="module")
def shards(postgres_url: str) -> Iterator[list[Database]]:
    """Three fresh databases, migrated by `crm db migrate`'s sharded path (logs, grants, shard map); shared
    by this module's tests (each drop takes ≈ 2 s), which therefore look at what they add."""
    with migrated_shards(postgres_url) as databases:
        yield databases


@pytest.fixture
def crm(shards: list[Database]) -> Iterator[ShardedApplication]:
    with sharded(shards) as app:
        yield app


def notification_ids(app: Any) -> list[int]:
    return [n.id for n in app.recorder.select_notifications(1, 100_000)]


def test_the_application_role_may_only_read_the_shard_map_and_append_to_each_log(crm: ShardedApplication) -> None:
    for database in crm.database, crm.apps[2].database:
        with psycopg.connect(database.url, autocommit=True) as connection:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute("DELETE FROM crm_events")
    with psycopg.connect(crm.database.url, autocommit=True) as connection:
        rows = connection.execute("SELECT shard, count(*) FROM crm_shard_map GROUP BY shard ORDER BY shard").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("UPDATE crm_shard_map SET shard = 0")
    assert rows == [(0, 22), (1, 21), (2, 21)]


def test_http_commands_land_on_the_shard_of_their_partition(shards: list[Database]) -> None:
    with TestClient(create_app(shards[0], registry(), shards=shards)) as client:
        crm: ShardedApplication = client.app.state.crm  # type: ignore[attr-defined]
        for number in range(9):
            customer = client.post("/customers", json={"name": f"C{number}"}, headers=SALES).json()["id"]
            deal = client.post("/deals", json={"customer_id": customer, "title": "T", "amount": "10"},
                               headers=SALES).json()["id"]
            home = crm.shard_of(partition_of(UUID(customer)))
            assert shards_holding(crm, customer) == shards_holding(crm, deal) == [home]
            assert client.get(f"/deals/{deal}", headers=SALES).json()["customer_id"] == customer
            assert len(client.get(f"/deals/{deal}/history", headers=SALES).json()["items"]) == 1
            assert client.get(f"/customers/{customer}", headers=SALES).json()["name"] == f"C{number}"  # its key
        keyed = {**SALES, "Idempotency-Key": "shard-1"}
        first = client.post("/customers", json={"name": "Once"}, headers=keyed)
        counts = crm.event_counts()
        assert client.post("/customers", json={"name": "Once"}, headers=keyed).json() == first.json()
        assert crm.event_counts() == counts  # the retry found the receipt on the record's shard
        twins = {**SALES, "Idempotency-Key": "shard-2"}
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: client.post("/customers", json={"name": "Twin"}, headers=twins), "ab"))
        assert answers[0].json() == answers[1].json()  # sent at once: the key's partition put both on one shard
        assert sum(crm.event_counts()) == sum(counts) + 1


def test_a_converted_lead_stays_on_one_shard(crm: ShardedApplication) -> None:
    lead = crm.handle(CaptureLead("Bo", company="B"), META)
    for command in (AssignLead(lead, "sam"), ContactLead(lead, "email", "hi"), QualifyLead(lead, "fit")):
        crm.handle(command, META)
    before = crm.event_counts()
    customer, deal = crm.handle(ConvertLead(lead, "First", Decimal(9), "EUR"), META)
    home = crm.shard_of(partition_of(lead))
    grown = [after - was for after, was in zip(crm.event_counts(), before)]
    assert grown == [3 if i == home else 0 for i in range(3)]  # lead converted, customer, deal: one shard
    assert shards_holding(crm, customer) == shards_holding(crm, deal) == [home]


def test_every_shard_holds_the_pipelines_with_the_same_events(crm: ShardedApplication) -> None:
    for key in DEFAULT_PIPELINES:
        expected = [e.__dict__ for e in crm.default.events.get(pipeline_id(key))]
        for app in crm.apps[1:]:
            assert [e.__dict__ for e in app.events.get(pipeline_id(key))] == expected


def test_a_reference_write_killed_between_shards_heals_with_crm_shards_sync(shards: list[Database],
                                                                            crm: ShardedApplication) -> None:
    env = {**os.environ, SHARD_URLS_VARIABLE: ",".join(d.url for d in shards)}
    died = subprocess.run([sys.executable, "-m", "tests.support.die_between_shards"], env=env, timeout=60)
    assert died.returncode == -9
    stages = [app.get(Pipeline, pipeline_id("sales")).stage_keys for app in crm.apps]
    assert ["demo" in keys for keys in stages] == [True, True, False]

    synced = subprocess.run([*CRM, "shards", "sync"], env=env, capture_output=True, text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    assert "shard 0: 0, shard 1: 0, shard 2: 1" in " ".join(synced.stdout.split())
    assert "demo" in crm.apps[2].get(Pipeline, pipeline_id("sales")).stage_keys
    listed = subprocess.run([*CRM, "shards", "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert '"partitions":"2-62 every 3rd"' in listed.stdout


def test_sixteen_concurrent_writers_spread_over_the_shards_and_keep_each_log_gap_free(
        crm: ShardedApplication) -> None:
    def write(worker: int) -> list[UUID]:
        made = []
        for number in range(6):
            customer = crm.handle(RegisterCustomer(f"W{worker}-{number}"), META)
            crm.handle(OpenDeal(customer_id=customer, title="T", amount=Decimal(1), currency="EUR"), META)
            made.append(customer)
        return made

    before = crm.event_counts()
    with ThreadPoolExecutor(16) as pool:
        customers = [c for made in pool.map(write, range(16)) for c in made]
    assert len(customers) == 96
    per_shard = [sum(crm.shard_of(partition_of(c)) == shard for c in customers) for shard in range(3)]
    assert min(per_shard) > 10  # 96 random partitions: each shard's expected 32 ± 5
    assert [after - was for after, was in zip(crm.event_counts(), before)] == [2 * count for count in per_shard]
    for app in crm.apps:
        ids = notification_ids(app)
        assert ids == list(range(1, len(ids) + 1))


def test_concurrent_reference_writes_are_decided_by_the_default_shard_and_copied_alike(
        crm: ShardedApplication) -> None:
    """8 writers add values to one vocabulary at once: the default shard's version check refuses the losers
    (who retry), the copies of concurrent winners race each other, and every shard ends with the same events."""
    def add(value: str) -> int:
        for _ in range(50):
            try:
                return int(crm.handle(AddVocabularyValue("region", value), META))
            except ConcurrencyConflict:
                continue
        raise AssertionError(f"{value} never saved")

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(add, [f"区域{n}" for n in range(16)]))
    expected = [e.__dict__ for e in crm.default.events.get(vocabulary_id("region"))]
    head = expected[-1]["originator_version"]
    assert sorted(versions) == list(range(head - 15, head + 1))  # each value its own version
    for app in crm.apps[1:]:
        assert [e.__dict__ for e in app.events.get(vocabulary_id("region"))] == expected
    assert crm.sync() == [0, 0, 0] and crm.unsynced() == 0


def test_a_database_with_records_does_not_silently_become_the_default_shard(crm_pg: Any) -> None:
    """Customers of partitions that p mod 3 puts on shards 1 and 2 would be lost from sight: refused."""
    for _ in range(12):  # all 12 in shard 0's partitions: (22/64)^12 ≈ 3e-6
        crm_pg.handle(RegisterCustomer("Alone"), META)
    owner = database_from_url(services.owner_url(crm_pg.database.url))
    with pytest.raises(ShardMapMismatch, match="already holds .* records of partitions"):
        create_map(owner, 3, "crm")
    assert create_map(owner, 1, "crm") == {p: 0 for p in range(64)}  # one shard: every record stays found


def test_the_test_cluster_has_the_three_shard_databases() -> None:
    """deploy/postgres-roles.sql made them (deploy/services.sh start); `crm db migrate` sets them up."""
    urls = os.environ.get("CRM_TEST_SHARD_URLS", "")
    if not urls:
        pytest.skip("CRM_TEST_SHARD_URLS is not set (eval \"$(deploy/services.sh env)\")")
    for url in urls.split(","):
        with psycopg.connect(url, connect_timeout=10) as connection:
            assert connection.execute("SELECT current_database()").fetchone()[0] == url.rsplit("/", 1)[1]
