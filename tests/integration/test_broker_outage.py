"""Kafka goes away under load: commands keep being accepted and stored, and the relay catches up by
itself after the broker is back, with nothing lost."""

import threading
import time

from kafka import KafkaConsumer

from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at

from tests.support import running_services as services


def _wait(condition: callable, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_the_relay_rides_out_a_broker_outage(crm_pg: CrmApplication, kafka_bootstrap: str, kafka_topic: str) -> None:
    store = ReadModelStore(crm_pg.database)
    producer = producer_for(kafka_bootstrap)
    relay = KafkaRelay(crm_pg, store, producer, topic=kafka_topic)
    stop = threading.Event()
    follower = threading.Thread(target=relay.follow, args=(stop, 0.05, 1.0))
    follower.start()
    try:
        for day in range(10):
            crm_pg.register_customer(RegisterCustomer(f"客户{day}", "华东", "零售", "web"), at(day))
        _wait(lambda: relay.position() == crm_pg.event_count(), 30, "the relay to publish")

        services.run_deploy("kafka.sh", "stop")
        written_while_down = [crm_pg.register_customer(RegisterCustomer(f"停机客户{day}", "华南", "医疗", "phone"), at(day))
                              for day in range(20)]
        time.sleep(2)
        assert len(written_while_down) == 20 and relay.position() < crm_pg.event_count()

        services.run_deploy("kafka.sh", "start", timeout=180)
        _wait(lambda: relay.position() == crm_pg.event_count(), 120, "the relay to catch up")
    finally:
        stop.set()
        follower.join(timeout=30)
        producer.close()

    consumer = KafkaConsumer(kafka_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10000)
    delivered = {decode_headers(m.headers)["ce_id"] for m in consumer}
    consumer.close()
    assert delivered == {f"{e.originator_id}:{e.originator_version}" for _, e in crm_pg.read_log()}
    store.close()
