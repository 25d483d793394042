"""`crm serve`'s /metrics with a broker named: each read model's lag per partition against the topic's heads,
and the consumer group's lag, read from the real Kafka at scrape time."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from gateways.http.app import kafka_lag_sources
from services.metrics import MetricsRegistry
from services.projection_runtime.partitioned import PartitionedProjector
from services.projection_runtime.registry import READ_MODELS
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore


def _scrape(registry: MetricsRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text, _ = registry.exposition()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode()) for sample in family.samples}


def test_lag_per_partition_and_the_groups_lag_come_from_the_topic(kafka_bootstrap: str, kafka_topic: str,
                                                                  tmp_path: Path) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for _ in range(5):
        producer.send(kafka_topic, b"x", partition=7)
    producer.flush()
    producer.close()
    with closing(ReadModelStore(database_from_url(f"sqlite:///{tmp_path / 'read.sqlite3'}"))) as store:
        PartitionedProjector(store, [model() for model in READ_MODELS.values()])  # its tables
        with store.transaction() as cursor:  # the funnel applied offsets 0 and 1 of partition 7
            cursor.execute('INSERT INTO projection_offsets (name, partition, "offset") VALUES (\'funnel\', 7, 1)')
        found = _scrape(MetricsRegistry(kafka_lag_sources(kafka_bootstrap, store, kafka_topic)))

    assert found[("crm_projection_lag_events", (("partition", "7"), ("read_model", "funnel")))] == 3
    assert found[("crm_consumer_group_lag_events", (("group", "crm-projectors"), ("partition", "7")))] == 5
    assert found[("crm_consumer_group_lag_events", (("group", "crm-projectors"), ("partition", "0")))] == 0
