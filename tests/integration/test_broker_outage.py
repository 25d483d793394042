"""Kafka goes away under load: commands keep being accepted and stored, reminders falling due keep being emitted
into the log (exactly once each: the reminder process needs no broker), and the relay catches up by itself after
the broker is back, with nothing lost — on crm.events and on crm.reminders. One broker restart for both (≈ 30 s
of a loaded CI run each)."""

import threading
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer

from domain.partitions import PARTITIONS
from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.reminder_process import ReminderProcess
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.reminder_delivery import delivered, logged_reminders, open_deals, set_thresholds, wait_for

from tests.support import running_services as services


@pytest.fixture
def reminders_topic(kafka_bootstrap: str) -> Iterator[str]:
    with services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS, prefix="crm-test-reminders") as topic:
        yield topic


def test_the_relay_rides_out_a_broker_outage(crm_pg: CrmApplication, kafka_bootstrap: str, kafka_topic: str,
                                             reminders_topic: str) -> None:
    store, process_store = ReadModelStore(crm_pg.database), ReadModelStore(crm_pg.database)
    producer = producer_for(kafka_bootstrap)
    relay = KafkaRelay(crm_pg, store, producer, topic=kafka_topic, reminders_topic=reminders_topic)
    stop = threading.Event()
    follower = threading.Thread(target=relay.follow, args=(stop, 0.05, 1.0))
    reminding = threading.Thread(target=ReminderProcess(crm_pg, process_store).follow, args=(stop, 0.05))
    follower.start()
    try:
        for day in range(10):
            crm_pg.register_customer(RegisterCustomer(f"客户{day}", "华东", "零售", "web"), at(day))
        set_thresholds(crm_pg, [1.5, 3])
        deals = open_deals(crm_pg, 3)
        wait_for(lambda: relay.position() == crm_pg.event_count(), 30, "the relay to publish")

        services.run_deploy("kafka.sh", "stop")
        reminding.start()
        written_while_down = [crm_pg.register_customer(RegisterCustomer(f"停机客户{day}", "华南", "医疗", "phone"), at(day))
                              for day in range(20)]
        wait_for(lambda: len(logged_reminders(crm_pg)) == 6, 60, "six reminders while the broker is down")
        assert len(written_while_down) == 20 and relay.position() < crm_pg.event_count()

        services.run_deploy("kafka.sh", "start", timeout=180)
        wait_for(lambda: relay.position() == crm_pg.event_count(), 120, "the relay to catch up")
    finally:
        stop.set()
        follower.join(timeout=30)
        if reminding.is_alive():
            reminding.join(timeout=30)
        producer.close()

    consumer = KafkaConsumer(kafka_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    delivered_events = {decode_headers(m.headers)["ce_id"] for m in consumer}
    consumer.close()
    assert delivered_events == {f"{e.originator_id}:{e.originator_version}" for _, e in crm_pg.read_log()}
    reminders = logged_reminders(crm_pg)
    assert len({(r.item_id, r.entry_version, r.threshold) for r in reminders}) == len(reminders) == 6
    assert {r.item_id for r in reminders} == set(deals)
    on_topic = sorted(ce_id for ce_id, _, _, _ in delivered(kafka_bootstrap, reminders_topic))
    assert sorted(set(on_topic)) == sorted(f"{r.originator_id}:1" for r in reminders)  # none lost
    assert len(on_topic) == len(set(on_topic)), f"redelivered after the outage (same ce_id): {on_topic}"
    store.close()
    process_store.close()
