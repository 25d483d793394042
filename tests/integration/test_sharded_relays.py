"""One relay per shard (three shard databases on the real PostgreSQL, real Kafka): each event of each shard's
log lands in its record's home partition, each reference event (every shard holds a copy) once in every
partition — sent by the shard that owns it — and a consumer group fed by the three relays builds read models
holding every customer of every shard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from domain.base import Meta
from domain.partitions import PARTITIONS, is_reference, partition_of
from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.relay import relay_lag
from services.commands import OpenDeal, RegisterCustomer
from services.settings import Database
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.consumer_group import caught_up, end_offsets, members, relay_every_shard, wait_until
from tests.support.shards import migrated_shards, sharded
from tests.support.topics import read_topic


@pytest.fixture
def shards(postgres_url: str) -> Iterator[list[Database]]:
    with migrated_shards(postgres_url) as databases:
        yield databases


def test_one_relay_per_shard_publishes_by_home_partition(shards: list[Database], kafka_bootstrap: str,
                                                         kafka_topic: str) -> None:
    with sharded(shards) as crm:
        customers = [crm.handle(RegisterCustomer(f"客户{n}", "华东", "零售", "web"), Meta(actor="测试"))
                     for n in range(12)]
        deals = [crm.handle(OpenDeal(customer, f"商机{n}", "1000"), at(n)) for n, customer in enumerate(customers)]
        assert len({crm.shard_of(partition_of(c)) for c in customers}) > 1  # spread over the shards
        store = ReadModelStore(crm.database)
        relay_every_shard(crm, store, kafka_bootstrap, kafka_topic)
        assert [relay_lag(app, store, shard) for shard, app in enumerate(crm.apps)] == [0, 0, 0]

        messages = read_topic(kafka_bootstrap, kafka_topic)
        placed = Counter((decode_headers(m.headers)["ce_id"], m.partition) for m in messages)
        assert set(placed.values()) == {1}  # no event twice in a partition, whichever shards hold it
        by_subject: dict[UUID, set[int]] = {}
        for m in messages:
            by_subject.setdefault(UUID(decode_headers(m.headers)["ce_subject"]), set()).add(m.partition)
        for customer, deal in zip(customers, deals):
            assert by_subject[customer] == by_subject[deal] == {partition_of(customer)}
        reference = [e for _, e in crm.read_log() if is_reference(type(e).__qualname__.split(".")[0])]
        assert reference and all(by_subject[e.originator_id] == set(range(PARTITIONS)) for e in reference)

        with members(crm.apps[0], kafka_bootstrap, kafka_topic, f"g-{uuid4().hex[:8]}", 2):
            ends = end_offsets(kafka_bootstrap, kafka_topic)
            wait_until(lambda: caught_up(store, ends), 60, "the members to consume the three relays' messages")
        registered = {str(c) for (c,) in store.query("SELECT customer_id FROM timeline_customers")}
        assert registered == {str(c) for c in customers}
        store.close()
