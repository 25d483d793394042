"""The inbound consumer on the real Kafka and PostgreSQL: good messages become commands, bad ones go to
the dead-letter topic with the reason, and the consumer carries on."""

from collections.abc import Iterator
from uuid import UUID

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from domain.campaign import Campaign
from domain.customer import Customer
from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.inbound import InboundConsumer, consumer_for
from services.application import CrmApplication
from services.commands import LaunchCampaign, PlanCampaign, RegisterCustomer
from tests.conftest import at

from tests.support import running_services as services


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[tuple[str, str]]:
    with services.temporary_topic(kafka_bootstrap, 1) as inbound, services.temporary_topic(kafka_bootstrap, 1) as dlq:
        yield inbound, dlq


def test_good_messages_become_commands_and_bad_ones_go_to_the_dlq(crm_pg: CrmApplication, kafka_bootstrap: str,
                                                                   topics: tuple[str, str]) -> None:
    inbound, dlq = topics
    customer = crm_pg.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某"), at(0))
    campaign = crm_pg.plan_campaign(PlanCampaign("双十一", "social", "1000"), at(0))
    crm_pg.launch_campaign(LaunchCampaign(campaign), at(1))
    messages = [
        {"type": "touch", "source": "web-tracking", "customer_id": str(customer), "channel": "web",
         "direction": "inbound", "summary": "浏览了价格页", "occurred_at": "2026-03-05T10:00:00+08:00"},
        b"{broken json",
        {"type": "touch", "source": "web-tracking", "customer_id": str(customer), "channel": "fax",
         "direction": "inbound"},
        {"type": "campaign_response", "source": "ad-platform", "campaign_id": str(campaign), "kind": "click",
         "customer_id": str(customer)},
        {"type": "touch", "source": "web-tracking", "customer_id": "00000000-0000-4000-8000-000000000000",
         "channel": "web", "direction": "inbound"},
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for message in messages:
        producer.send(inbound, value=message if isinstance(message, bytes) else orjson.dumps(message))
    producer.flush()
    consumer = consumer_for(kafka_bootstrap, inbound, group=f"g-{inbound}")
    worker = InboundConsumer(crm_pg, consumer, producer, dlq_topic=dlq)

    totals = [0, 0]
    for _ in range(40):
        handled, dead = worker.poll_once(500)
        totals = [totals[0] + handled, totals[1] + dead]
        if sum(totals) == len(messages):
            break
    consumer.close()

    assert totals == [2, 3]
    *_, touch, response = crm_pg.history(customer)  # the response on the customer's stream, after the touch
    assert isinstance(touch, Customer.TouchLogged)
    assert (touch.summary, touch.actor, touch.occurred_at.isoformat()) == ("浏览了价格页", "web-tracking",
                                                                           "2026-03-05T02:00:00+00:00")
    assert isinstance(response, Customer.RespondedToCampaign) and response.campaign_id == campaign
    assert isinstance(crm_pg.history(campaign)[-1], Campaign.Launched)  # the campaign itself is not written
    dead_letters = KafkaConsumer(dlq, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=5000)
    reasons = [decode_headers(m.headers)["dlq_reason"] for m in dead_letters]
    dead_letters.close()
    assert len(reasons) == 3
    assert reasons[0].startswith("not JSON") and "unknown touch channel 'fax'" in reasons[1]
    assert "no customer with id 00000000-0000-4000-8000-000000000000" in reasons[2]
    again = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"g-{inbound}")
    assert again.committed(TopicPartition(inbound, 0)) == len(messages)  # a restart handles nothing twice
    again.close()
    producer.close()


def test_refused_messages_reach_the_dlq_with_a_readable_reason(crm_pg: CrmApplication, kafka_bootstrap: str,
                                                               topics: tuple[str, str]) -> None:
    inbound, dlq = topics
    customer = str(crm_pg.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某"), at(0)))
    touch = {"type": "touch", "source": "web-tracking", "customer_id": customer, "channel": "web",
             "direction": "inbound"}
    messages = [
        b'{"type": "touch", "source": "crm-sync", "customer_id": "' + customer.encode() + b'", "channel": "web", '
        b'"direction": "inbound", "channel": "phone"}',
        orjson.dumps({**touch, "customer_id": "abc", "colour": "red", "summary": "私人备注 13900000000" * 200}),
        orjson.dumps({"type": "fax", "source": "x"}),
        orjson.dumps([touch]),
        orjson.dumps({**touch, "occurred_at": "0001-01-01T00:00:00+00:00"}),
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for message in messages:
        producer.send(inbound, value=message)
    producer.flush()
    consumer = consumer_for(kafka_bootstrap, inbound, group=f"g-{inbound}")
    worker = InboundConsumer(crm_pg, consumer, producer, dlq_topic=dlq)
    dead = 0
    for _ in range(40):
        dead += worker.poll_once(500)[1]
        if dead == len(messages):
            break
    consumer.close()
    producer.close()

    dead_letters = KafkaConsumer(dlq, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=5000)
    reasons = [decode_headers(m.headers)["dlq_reason"] for m in dead_letters]
    dead_letters.close()
    assert reasons == [
        "not accepted JSON: the key 'channel' appears more than once in one JSON object (each key may appear once)",
        "invalid message: the field 'customer_id' must be a valid UUID, invalid length: found 3 (got 'abc'); "
        "the field 'summary' must have at most 2000 characters; the field 'colour' is not part of a touch message",
        "invalid message: the field 'type' must be one of 'touch', 'campaign_response' (got 'fax')",
        "invalid message: the message must be a JSON object",
        "refused: occurred_at must be between 1900-01-01 and 2999-12-31 (UTC) (got 0001-01-01T00:00:00+00:00)",
    ]
    assert len(crm_pg.history(UUID(customer))) == 1  # nothing was written
