"""`crm projections consume`'s runtime on the real PostgreSQL and Kafka: read models fed from the relay's topic
by a consumer group equal a clean rebuild from the log, whatever the batch sizes and however the members share
the partitions; ten subscriber groups on the same topic each get every event."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer

from gateways.kafka.cloudevents import decode_headers
from services.application import CrmApplication
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.consumer_group import (assert_equal_to_rebuild, assert_equal_to_replay, caught_up, end_offsets, members, relay_all,
                                          wait_until)
from tests.support.equivalence import SEED_OPERATIONS, apply_history, instants, operations

from tests.support import running_services as services


def _instants(days: list[int]) -> list:
    return [T0 + timedelta(days=day, hours=day % 7) for day in days]


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, days=instants, sizes=st.lists(st.integers(1, 60), min_size=2, max_size=2),
       cut=st.floats(0.2, 0.8))
def test_consumed_read_models_equal_a_rebuild(postgres_url: str, kafka_bootstrap: str, ops: list, days: list[int],
                                              sizes: list[int], cut: float) -> None:
    """A random history (the equivalence generator's), relayed in two parts; two members with random batch sizes
    consume while it is relayed; then the read models equal a rebuild and the replay at random instants."""
    with services.temporary_database(postgres_url) as url, services.temporary_topic(kafka_bootstrap, 64) as topic:
        app = CrmApplication(database_from_url(url))
        app.ensure_default_pipelines()
        live = ReadModelStore(app.database)
        split = int(len(ops) * cut)
        with members(app, kafka_bootstrap, topic, f"g-{uuid4().hex[:8]}", 2, lambda n: sizes[n]):
            for part in (ops[:split], ops[split:]):
                apply_history(app, part, on_sync=lambda: None)
                relay_all(app, live, kafka_bootstrap, topic)
            ends = end_offsets(kafka_bootstrap, topic)
            wait_until(lambda: caught_up(live, ends), 60, "the members to consume the topic")
        assert_equal_to_rebuild(app, live, postgres_url, _instants(days))
        assert_equal_to_replay(app, live, _instants(days))
        live.close()
        app.close()


def test_ten_subscriber_groups_each_get_every_event(crm_pg: CrmApplication, kafka_bootstrap: str,
                                                    kafka_topic: str) -> None:
    """Each group de-duplicating by ce_id (reference data comes once per partition) has the whole log."""
    apply_history(crm_pg, SEED_OPERATIONS * 3, on_sync=lambda: None)
    store = ReadModelStore(crm_pg.database)
    relay_all(crm_pg, store, kafka_bootstrap, kafka_topic)
    store.close()
    logged = {f"{e.originator_id}:{e.originator_version}" for _, e in crm_pg.read_log()}
    got: list[set[str]] = [set() for _ in range(10)]
    threads = [threading.Thread(target=_subscribe, args=(kafka_bootstrap, kafka_topic, logged, ids)) for ids in got]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # kafka-python 3.0.12 left 1 of 10 consumers started at once stuck "rebalancing" (1 run in 3)
    for thread in threads:
        thread.join(timeout=60)
    assert all(ids == logged for ids in got), [len(ids) for ids in got]


def _subscribe(bootstrap: str, topic: str, expected: set[str], ids: set[str]) -> None:
    """One subscriber group: its own consumer, reading until it has every expected ce_id (30 s at most)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"subscriber-{uuid4().hex[:8]}",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    deadline = time.monotonic() + 30
    try:
        while ids != expected and time.monotonic() < deadline:
            ids.update(decode_headers(m.headers)["ce_id"] for records in consumer.poll(timeout_ms=200).values()
                       for m in records)
    finally:
        consumer.close()
