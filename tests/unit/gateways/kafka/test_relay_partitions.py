"""Where the relay sends each event (producer stubbed): its record's home partition, a deal's and a ticket's
their customer's (legacy ids say nothing), reference data to every partition its shard owns; and the stored
event it carries, from which a consumer rebuilds the very event of the log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from domain.partitions import PARTITIONS, in_partition, partition_of
from gateways.kafka.projection_consumer import UnreadableMessage, stored_event_of
from gateways.kafka.relay import KafkaRelay, TopicMismatch, relay_lag
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at


@dataclass
class _Done:
    def succeeded(self) -> bool:
        return True


@dataclass
class _Producer:
    partitions: int = PARTITIONS
    sent: list = field(default_factory=list)

    def send(self, topic: str, key: bytes, value: bytes, headers: list, partition: int) -> _Done:
        self.sent.append(_Record(topic, partition, len(self.sent), key, value, headers))
        return _Done()

    def flush(self, timeout: float) -> None:
        pass

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))


@dataclass
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list


@pytest.fixture
def store() -> ReadModelStore:
    return ReadModelStore(database_from_url("memory://"))


def _ce(record: Any, name: str) -> str:
    return dict(record.headers)[name].decode()


def test_an_event_goes_to_its_records_home_partition_and_a_deal_to_its_customers(crm: CrmApplication,
                                                                                 store: ReadModelStore) -> None:
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), at(1))
    deal = crm.open_deal(OpenDeal(customer, "扩容", "1000"), at(2))
    producer = _Producer()
    relay = KafkaRelay(crm, store, producer)  # type: ignore[arg-type]
    relay.run_batch()

    by_subject: dict[str, set[int]] = {}
    for record in producer.sent:
        by_subject.setdefault(_ce(record, "ce_subject"), set()).add(record.partition)
    assert by_subject.pop(str(customer)) == {partition_of(customer)}
    assert by_subject.pop(str(deal)) == {partition_of(customer)}  # the customer's, whatever the deal's id says
    assert by_subject and all(partitions == set(range(PARTITIONS)) for partitions in by_subject.values())  # pipelines
    assert relay_lag(crm, store) == 0


def test_a_shards_relay_sends_reference_data_to_the_partitions_it_owns(crm: CrmApplication,
                                                                       store: ReadModelStore) -> None:
    producer = _Producer()
    relay = KafkaRelay(crm, store, producer, shard=2, partitions=range(2, PARTITIONS, 3))  # type: ignore[arg-type]
    assert relay.name == "kafka-relay:2" and relay_lag(crm, store, shard=2) == crm.event_count()

    relay.run_batch()

    assert {r.partition for r in producer.sent} == {p for p in range(PARTITIONS) if p % 3 == 2}
    assert relay_lag(crm, store, shard=2) == 0 and relay_lag(crm, store, shard=0) == crm.event_count()


def test_the_message_carries_the_stored_event(crm: CrmApplication, store: ReadModelStore) -> None:
    customer = crm.register_customer(RegisterCustomer("李四", "华南", "医疗", "phone", company="深圳某公司"), at(1))
    producer = _Producer()
    KafkaRelay(crm, store, producer).run_batch()  # type: ignore[arg-type]

    [record] = [r for r in producer.sent if _ce(r, "ce_subject") == str(customer)]
    [stored] = [n for n in crm.recorder.select_notifications(1, 1000) if n.originator_id == customer]
    rebuilt = crm.mapper.to_sealed_event(stored_event_of(record))
    assert type(rebuilt) is type(crm.mapper.to_sealed_event(stored))
    assert vars(rebuilt) == vars(crm.mapper.to_sealed_event(stored))  # the log's event, to the last field
    assert rebuilt.name.startswith("pii:v1:") and crm.keys.unseal(rebuilt.name) == "李四"  # sealed, as in the log


def test_a_message_without_the_stored_event_is_refused_with_a_reason() -> None:
    with pytest.raises(UnreadableMessage, match="crm.events/3/7 carries no stored event"):
        stored_event_of(_Record("crm.events", 3, 7, b"", b"{}", [("ce_subject", str(in_partition(3)).encode())]))


def test_a_topic_with_another_number_of_partitions_is_refused(crm: CrmApplication, store: ReadModelStore) -> None:
    with pytest.raises(TopicMismatch, match="has 3 partitions.*needs 64"):
        KafkaRelay(crm, store, _Producer(partitions=3))  # type: ignore[arg-type]


def test_the_replication_of_a_topic_the_relay_creates_is_a_setting() -> None:
    from gateways.kafka.relay import TopicMismatch, replication_factor

    assert replication_factor({}) == 1 and replication_factor({"CRM_KAFKA_REPLICATION_FACTOR": " 3 "}) == 3
    for bad in ("0", "three", "-1"):
        with pytest.raises(TopicMismatch, match="CRM_KAFKA_REPLICATION_FACTOR must be a whole number"):
            replication_factor({"CRM_KAFKA_REPLICATION_FACTOR": bad})
