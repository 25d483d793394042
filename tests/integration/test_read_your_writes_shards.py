"""Read-your-writes over three shard databases on the real PostgreSQL: a command through the sharded HTTP app
answers `X-Log-Position: partition:position`; a query waiting for it returns once the partitioned projector
applied it — fed from each shard's log in-process (tests.support.shard_feed), and end to end through one
relay per shard, real Kafka and a member of the projectors' group — and not before; an offsets table from
before positions gets the column."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing

import psycopg
import pytest
from fastapi.testclient import TestClient

from services.application import CrmApplication
from services.commands import CaptureLead
from services.projection_runtime import partition_freshness
from services.projection_runtime.partition_freshness import read_partition_positions
from services.projection_runtime.partitioned import Delivery, PartitionedProjector
from services.projection_runtime.registry import projector_for
from services.settings import Database, database_from_url
from services.sharding.bootstrap import single_log
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.consumer_group import caught_up, end_offsets, members, relay_every_shard, wait_until
from tests.support.equivalence import sealed_log
from tests.support.shard_feed import ShardFeed
from tests.support.shards import migrated_shards
from tests.unit.gateways.http.conftest import auth, registry

SALES = auth("sales")
FEED_AFTER = 0.4  # seconds: the consumer applies while the query is waiting
NOT_YET = 0.3  # seconds a query waits for a write nothing can apply yet (unrelayed, unfed): its 503 comes soon
UNDER_LOAD = 30.0  # seconds a query may wait for a write being applied: it answers as soon as it is, so only a
# loaded machine (a CI run on 2 busy cores, a member rejoining after a missed 6 s session) waits long


@pytest.fixture(scope="module")
def shards(postgres_url: str) -> Iterator[list[Database]]:
    with migrated_shards(postgres_url) as databases:
        yield databases


@pytest.fixture
def client(shards: list[Database], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from gateways.http.app import create_app

    with TestClient(create_app(shards[0], registry(), shards=shards)) as test_client:
        yield test_client


@pytest.fixture
def feed(client: TestClient, shards: list[Database]) -> Iterator[ShardFeed]:
    """A consumer of its own: its own connections to the default shard's read store."""
    crm = client.app.state.crm  # type: ignore[attr-defined]
    store = ReadModelStore(shards[0])
    try:
        yield ShardFeed(crm, PartitionedProjector(store, projector_for(single_log(crm), store).models))
    finally:
        store.close()


def waiting_at_most(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """How long the server's queries wait for a position (partition_freshness's own name: the one-log
    `freshness.LONGEST_WAIT` is not the one it reads)."""
    monkeypatch.setattr(partition_freshness, "LONGEST_WAIT", seconds)


def feed_later(feed: ShardFeed) -> threading.Thread:
    def run() -> None:
        time.sleep(FEED_AFTER)
        feed.feed()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def positions(header: str) -> dict[int, int]:
    return {int(p): int(n) for p, n in (item.split(":") for item in header.split(","))}


def reached(applied: str, wanted: str) -> bool:
    """Whether `applied` (X-Read-Model-Position) names the partitions of `wanted`, each at or past it (the
    campaign's copy on the customer's shard comes after the tag in the customer's partition too)."""
    have, want = positions(applied), positions(wanted)
    return have.keys() == want.keys() and all(have[p] >= n for p, n in want.items())


def test_a_query_waiting_for_a_commands_partition_position_returns_once_it_is_applied(
        client: TestClient, feed: ShardFeed, monkeypatch: pytest.MonkeyPatch) -> None:
    feed.feed()  # what the shards held before (the default pipelines)
    customer = client.post("/customers", json={"name": "张三", "region": "华东"}, headers=SALES).json()["id"]
    tagged = client.post(f"/customers/{customer}/tags", json={"tag": "重要客户"}, headers=SALES)
    campaign = client.post("/campaigns", json={"name": "春季展会", "channel": "event", "budget": "100"},
                           headers=auth("admin"))
    mine, reference = tagged.headers["X-Log-Position"], campaign.headers["X-Log-Position"]

    waiting_at_most(monkeypatch, NOT_YET)
    late = client.get(f"/customers/{customer}/timeline", params={"wait_for_position": mine}, headers=SALES)
    waiting_at_most(monkeypatch, UNDER_LOAD)
    started, consumer = time.monotonic(), feed_later(feed)
    timeline = client.get(f"/customers/{customer}/timeline", params={"wait_for_position": mine}, headers=SALES)
    waited = time.monotonic() - started
    consumer.join()
    campaigns = client.get("/reports/campaigns", params={"wait_for_position": f"{mine},{reference}"},
                           headers=auth("analyst"))

    assert late.status_code == 503 and late.headers["Retry-After"] == "1", late.text
    assert timeline.status_code == 200, timeline.text
    assert waited >= FEED_AFTER and reached(timeline.headers["X-Read-Model-Position"], mine)  # not before
    assert [item["kind"] for item in timeline.json()["items"]][-1] == "Customer.TagAdded"
    assert campaigns.status_code == 200 and "春季展会" in campaigns.text
    assert reached(campaigns.headers["X-Read-Model-Position"], f"{mine},{reference}")


def test_an_offsets_table_from_before_positions_gets_the_column(pg_database: str) -> None:
    crm = CrmApplication(database_from_url(pg_database))
    store = ReadModelStore(crm.database)
    try:
        for name in ("王五", "赵六"):
            crm.capture_lead(CaptureLead(name, "华北", "互联网", "search_ads"), at(1))
        first, second = sealed_log(crm)
        models = projector_for(crm, store, ["timeline"]).models
        PartitionedProjector(store, models).apply([Delivery(7, 0, first, 1)])
        with psycopg.connect(pg_database, autocommit=True) as connection:  # the app role made the table
            connection.execute("ALTER TABLE projection_offsets DROP COLUMN position")

        PartitionedProjector(store, models).apply([Delivery(7, 1, second, 2)])  # a consumer starting

        assert read_partition_positions(store, ["timeline"], [7]) == {("timeline", 7): 2}
    finally:
        store.close()
        crm.close()


def test_through_the_relays_and_kafka_a_query_waits_for_a_commands_position(
        postgres_url: str, kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateways.http.app import create_app

    with (migrated_shards(postgres_url) as shards,  # its own: the read store's offsets are Kafka's here
          TestClient(create_app(shards[0], registry(), shards=shards)) as client,
          closing(ReadModelStore(shards[0])) as store):
        crm: ShardedApplication = client.app.state.crm  # type: ignore[attr-defined]
        with members(crm.apps[0], kafka_bootstrap, kafka_topic, f"ryw-{kafka_topic}", 1):
            relay_every_shard(crm, store, kafka_bootstrap, kafka_topic)  # what the shards held before
            ends = end_offsets(kafka_bootstrap, kafka_topic)
            wait_until(lambda: caught_up(store, ends), 60, "the member to join and consume")
            registered = client.post("/customers", json={"name": "李四", "region": "华南"}, headers=SALES)
            customer = registered.json()["id"]
            tagged = client.post(f"/customers/{customer}/tags", json={"tag": "回访"}, headers=SALES)
            mine = tagged.headers["X-Log-Position"]
            waiting_at_most(monkeypatch, NOT_YET)
            late = client.get(f"/customers/{customer}/timeline", params={"wait_for_position": mine},
                              headers=SALES)  # not relayed yet: 503 after the wait
            relay_every_shard(crm, store, kafka_bootstrap, kafka_topic)
            waiting_at_most(monkeypatch, UNDER_LOAD)  # the member's next poll, or its rejoin under load

            timeline = client.get(f"/customers/{customer}/timeline", params={"wait_for_position": mine},
                                  headers=SALES)

    assert late.status_code == 503, late.text
    assert timeline.status_code == 200, timeline.text
    assert reached(timeline.headers["X-Read-Model-Position"], mine)
    assert [item["kind"] for item in timeline.json()["items"]][-1] == "Customer.TagAdded"


def lag_answered(client: TestClient, expected: int) -> None:
    """Wait until a query answers `X-Read-Model-Lag: expected` (the server reads the topic's ends once a
    second, in the background: ≈ 0.5 s here after the relay published); fails with the last answer's headers
    after UNDER_LOAD seconds."""
    started = time.monotonic()
    while (found := client.get("/segments", headers=auth("analyst")).headers).get("X-Read-Model-Lag") != str(expected):
        assert time.monotonic() - started < UNDER_LOAD, f"no X-Read-Model-Lag: {expected}: {dict(found)}"
        time.sleep(0.05)


def test_with_a_broker_named_a_query_reports_how_many_records_its_read_models_lag(
        postgres_url: str, kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateways.http.app import create_app

    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP", kafka_bootstrap)
    with (migrated_shards(postgres_url) as shards,
          TestClient(create_app(shards[0], registry(), shards=shards, topic=kafka_topic)) as client,
          closing(ReadModelStore(shards[0])) as store):
        crm: ShardedApplication = client.app.state.crm  # type: ignore[attr-defined]
        customer = client.post("/customers", json={"name": "王五", "region": "华北"}, headers=SALES).json()["id"]
        for tag in ("甲", "乙", "丙"):
            client.post(f"/customers/{customer}/tags", json={"tag": tag}, headers=SALES)
        relay_every_shard(crm, store, kafka_bootstrap, kafka_topic)
        ends = end_offsets(kafka_bootstrap, kafka_topic)
        lag_answered(client, max(ends.values()))  # nothing consumed yet: the customer's partition is the longest
        with members(crm.apps[0], kafka_bootstrap, kafka_topic, f"lag-{kafka_topic}", 1):
            wait_until(lambda: caught_up(store, ends), 60, "the member to join and consume")
            lag_answered(client, 0)

    assert max(ends.values()) == sorted(ends.values())[-2] + 4  # the registration and its 3 tags, past the pipelines
