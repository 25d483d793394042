"""Read-your-writes over shards (three SQLite files): a change answers `X-Log-Position: partition:position`
— its own write's, not the process's latest — a query waits for it (bounded: 503 + Retry-After, then 200 once
the partitioned projector applied it, fed here from each shard's log as the relays and a consumer would) and
says where its read models stand; bad values are a 400 with a sentence. One log keeps its numbers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.partitions import partition_of
from gateways.http.app import create_app
from gateways.kafka import relay
from services.projection_runtime import partition_freshness
from services.projection_runtime.partition_ends import PartitionEnds
from services.projection_runtime.partitioned import PartitionedProjector
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.sharding.bootstrap import single_log
from tests.support.shard_feed import ShardFeed
from tests.unit.gateways.http.conftest import auth, register_customer, registry


@pytest.fixture
def sharded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API over three shards (its app: `sharded.app`)."""
    monkeypatch.setattr(partition_freshness, "LONGEST_WAIT", 0.2)  # its own name, not freshness.LONGEST_WAIT
    shards = [database_from_url(f"sqlite:///{tmp_path}/shard{i}.sqlite3") for i in range(3)]
    with TestClient(create_app(shards[0], registry(), shards=shards)) as client:
        yield client


@pytest.fixture
def feed(sharded: TestClient) -> ShardFeed:
    crm, store = sharded.app.state.crm, sharded.app.state.store  # type: ignore[attr-defined]
    return ShardFeed(crm, PartitionedProjector(store, projector_for(single_log(crm), store).models))


def written_at(crm: object, record_id: str) -> str:
    """The position a write to this record answers: its partition, its shard's last notification id."""
    partition = partition_of(UUID(record_id))
    return f"{partition}:{crm.apps[crm.shard_of(partition)].event_count()}"  # type: ignore[attr-defined]


def test_a_change_answers_its_own_partition_position(sharded: TestClient) -> None:
    crm = sharded.app.state.crm  # type: ignore[attr-defined]
    body = {"name": "张三", "region": "华东", "industry": "制造业", "channel": "web"}
    first = sharded.post("/customers", json=body, headers=auth("sales"))
    customer = first.json()["id"]
    assert first.status_code == 201 and first.headers["X-Log-Position"] == written_at(crm, customer)
    for _ in range(3):  # later writes elsewhere do not move this record's answer to their partitions
        register_customer(sharded)

    tagged = sharded.post(f"/customers/{customer}/tags", json={"tag": "vip"}, headers=auth("sales"))
    kept = sharded.post(f"/customers/{customer}/tags", json={"tag": "new"},
                        headers={**auth("sales"), "Idempotency-Key": "k-1"})  # written with its receipt
    assert kept.headers["X-Log-Position"] == written_at(crm, customer)
    campaign = sharded.post("/campaigns", json={"name": "春季展会", "channel": "event", "budget": "100"},
                            headers=auth("admin"))

    assert tagged.headers["X-Log-Position"].split(":")[0] == str(partition_of(UUID(customer)))
    assert campaign.headers["X-Log-Position"] == f"{crm.reference_partition()}:{crm.apps[0].event_count()}"
    refused = sharded.post(f"/customers/{customer}/tags", json={"tag": ""}, headers=auth("sales"))
    assert refused.status_code == 422 and "X-Log-Position" not in refused.headers


def test_a_query_waits_for_the_position_until_the_projector_applied_it(sharded: TestClient, feed: ShardFeed) -> None:
    customer = register_customer(sharded)
    tagged = sharded.post(f"/customers/{customer}/tags", json={"tag": "vip"}, headers=auth("sales"))
    position = tagged.headers["X-Log-Position"]
    other = register_customer(sharded)
    other_tagged = sharded.post(f"/customers/{other}/tags", json={"tag": "a"}, headers=auth("sales"))
    both = f"{position},{other_tagged.headers['X-Log-Position']}"

    late = sharded.get(f"/customers/{customer}/timeline", params={"wait_for_position": position}, headers=auth("sales"))
    feed.feed()
    fresh = sharded.get(f"/customers/{customer}/timeline", params={"wait_for_position": position},
                        headers=auth("sales"))
    funnel = sharded.get("/funnel", params={"wait_for_position": both}, headers=auth("analyst"))

    assert late.status_code == 503 and late.headers["Retry-After"] == "1", late.text
    assert "not yet" in late.json()["error"] and late.json()["detail"]["wait_for_position"] == position
    assert fresh.status_code == 200 and fresh.headers["X-Read-Model-Position"] == position
    assert fresh.json()["items"][-1]["kind"] == "Customer.TagAdded"
    assert funnel.status_code == 200 and set(funnel.headers["X-Read-Model-Position"].split(",")) == set(both.split(","))


def test_a_query_reports_the_lag_when_the_partitions_ends_are_known(sharded: TestClient, feed: ShardFeed) -> None:
    register_customer(sharded)
    feed.feed()
    ends = dict(feed.next_offset)  # what the consumer has read: the ends as Kafka knows them
    state = sharded.app.state  # type: ignore[attr-defined]
    state.partition_heads = lambda: {**ends, 5: ends.get(5, 0) + 4}  # 4 events not yet consumed

    answer = sharded.get("/segments", headers=auth("analyst"))

    assert answer.status_code == 200 and answer.headers["X-Read-Model-Lag"] == "4"
    assert "X-Read-Model-Position" not in answer.headers  # no partition asked
    state.partition_heads = lambda: 1 / 0  # the broker away
    assert "X-Read-Model-Lag" not in sharded.get("/segments", headers=auth("analyst")).headers


def test_before_any_consumer_ran_the_lag_is_every_record(sharded: TestClient) -> None:
    sharded.app.state.partition_heads = lambda: {5: 4, 6: 0}  # type: ignore[attr-defined]

    answer = sharded.get("/segments", headers=auth("analyst"))  # no offsets table yet

    assert answer.status_code == 200 and answer.headers["X-Read-Model-Lag"] == "4", answer.text


def test_a_query_takes_the_background_reading_and_never_waits_for_the_broker(sharded: TestClient) -> None:
    register_customer(sharded)
    state, unblock, read = sharded.app.state, threading.Event(), threading.Event()  # type: ignore[attr-defined]
    state.partition_heads = stuck = PartitionEnds(lambda: (unblock.wait(300), read.set()) and {}, every=0.01)
    stuck.start()  # its first reading hangs, as on a broker that accepts connections and never answers
    try:
        answer = sharded.get("/segments", headers=auth("analyst"))
        assert answer.status_code == 200 and not read.is_set()  # answered while the reading still hangs
        assert "X-Read-Model-Lag" not in answer.headers  # nothing read yet: unknown, not 0
    finally:
        unblock.set()
        stuck.stop()


class CountedReader:
    """gateways.kafka.relay.TopicHeadReader's place: partition 5 ends at offset 3 (4 records), none applied."""

    reads = 0

    def __init__(self, bootstrap: str, topic: str, timeout_ms: int | None = None) -> None:
        self.topic = topic

    def read(self) -> dict[int, int]:
        CountedReader.reads += 1
        return {5: 3}

    def close(self) -> None:
        pass


def test_a_server_given_a_broker_reports_the_lag_of_one_reading_a_second(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setattr(relay, "TopicHeadReader", CountedReader)
    shards = [database_from_url(f"sqlite:///{tmp_path}/shard{i}.sqlite3") for i in range(3)]
    with TestClient(create_app(shards[0], registry(), shards=shards, topic="crm.test")) as client:
        deadline = time.monotonic() + 30  # ≈ 1 s idle; the bound only ends a test that would hang
        while "X-Read-Model-Lag" not in (first := client.get("/segments", headers=auth("analyst"))).headers:
            assert time.monotonic() < deadline, "no reading within 30 s"
            time.sleep(0.02)
        started, reads = time.monotonic(), CountedReader.reads
        later = [client.get("/funnel", headers=auth("analyst")) for _ in range(20)]
        elapsed = time.monotonic() - started

    assert first.headers["X-Read-Model-Lag"] == "4"  # nothing applied of partition 5's offsets 0–3
    assert all(answer.headers["X-Read-Model-Lag"] == "4" for answer in later)
    assert CountedReader.reads - reads <= elapsed + 2  # one reading a second, not one per query


@pytest.mark.parametrize(("value", "says"), [
    ("17", "partition:position pairs"), ("abc", "partition:position pairs"), ("3:0", "between 1 and"),
    ("64:1", "below 64"), ("1:2,,3:4", "partition:position pairs"),
])
def test_bad_partition_positions_are_refused_with_a_sentence(sharded: TestClient, value: str, says: str) -> None:
    answer = sharded.get("/segments", params={"wait_for_position": value}, headers=auth("analyst"))

    assert answer.status_code == 400 and says in answer.json()["error"], answer.text


def test_a_position_its_shard_has_not_recorded_is_refused_at_once(sharded: TestClient) -> None:
    answer = sharded.get("/segments", params={"wait_for_position": "5:1000000"}, headers=auth("analyst"))

    assert answer.status_code == 422 and "there is no position 1000000" in answer.json()["error"]


@pytest.mark.parametrize("value", ["3:5", "x", "0", "-1", "١٢"])
def test_one_log_still_takes_a_number_only(client: TestClient, value: str) -> None:
    answer = client.get("/segments", params={"wait_for_position": value}, headers=auth("analyst"))

    assert answer.status_code == 422 and "whole number" in answer.json()["error"], answer.text


def test_the_openapi_document_names_the_freshness_headers_of_every_read_model_query(client: TestClient) -> None:
    operations = [(method, path, operation) for path, methods in client.get("/openapi.json").json()["paths"].items()
                  for method, operation in methods.items()]
    waiting = {(method, path) for method, path, operation in operations
               if any(p["name"] == "wait_for_position" for p in operation.get("parameters", []))}
    documented = {(method, path) for method, path, operation in operations
                  if {"X-Read-Model-Position", "X-Log-Position", "X-Read-Model-Lag"}
                  <= operation["responses"].get("200", {}).get("headers", {}).keys()}

    assert documented == waiting and ("get", "/segments") in documented and len(documented) > 10
