"""The relay on the real PostgreSQL and Kafka: every event published once per run, as CloudEvents,
keyed by customer so each customer's events stay in order, with the position saved after the ack."""

from collections.abc import Iterator
from uuid import UUID

import orjson
import pytest
from kafka import KafkaConsumer

from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ChangeStage, ContactLead, ConvertLead, LaunchCampaign,
                               OpenTicket, PlanCampaign, QualifyLead, RecordResponse, RegisterCustomer, ResolveTicket)
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at


@pytest.fixture
def relay(crm_pg: CrmApplication, kafka_bootstrap: str, kafka_topic: str) -> Iterator[KafkaRelay]:
    store = ReadModelStore(crm_pg.database)
    producer = producer_for(kafka_bootstrap)
    yield KafkaRelay(crm_pg, store, producer, topic=kafka_topic)
    producer.close()
    store.close()


def _history(crm: CrmApplication) -> dict[str, UUID]:
    campaign = crm.plan_campaign(PlanCampaign("行业展会", "event", "50000"), at(0))
    crm.launch_campaign(LaunchCampaign(campaign), at(1))
    lead = crm.capture_lead(CaptureLead("王五", "华北", "金融", "event", company="北京华信", campaign_id=campaign), at(1))
    crm.assign_lead(AssignLead(lead, "陈杰", "industry"), at(2))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(3))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(4))
    customer, deal = crm.convert_lead(ConvertLead(lead, "核心系统改造", "880000", "CNY"), at(5))
    other = crm.register_customer(RegisterCustomer("赵六", "西南", "医疗", "web", company="成都天成"), at(5))
    crm.change_stage(ChangeStage(deal, "first_contact", "客户回电"), at(6))
    ticket = crm.open_ticket(OpenTicket(other, "登录失败", "phone", priority="urgent"), at(7))
    crm.record_response(RecordResponse(campaign, "attendance", customer), at(8))
    crm.change_stage(ChangeStage(deal, "needs_analysis", "现场调研"), at(9))
    crm.resolve_ticket(ResolveTicket(ticket, "已重置密码"), at(10))
    return {"customer": customer, "deal": deal, "other": other, "ticket": ticket, "lead": lead}


def _consume(bootstrap: str, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000, group_id=None)
    messages = []
    for message in consumer:
        messages.append(message)
        if len(messages) >= expected:
            break
    consumer.close()
    return messages


def test_every_event_is_published_as_a_cloudevent(crm_pg: CrmApplication, relay: KafkaRelay,
                                                  kafka_bootstrap: str, kafka_topic: str) -> None:
    ids = _history(crm_pg)
    while relay.run_batch(limit=7):
        pass

    messages = _consume(kafka_bootstrap, kafka_topic, crm_pg.event_count() + 1)

    assert len(messages) == crm_pg.event_count() == relay.position()
    headers = [decode_headers(m.headers) for m in messages]
    assert len({h["ce_id"] for h in headers}) == len(messages)  # each event exactly once
    stage_change = next(m for m, h in zip(messages, headers) if h["ce_type"] == "crm.Deal.StageChanged")
    h = decode_headers(stage_change.headers)
    assert (h["ce_specversion"], h["ce_source"], h["ce_subject"]) == ("1.0", "/crm", str(ids["deal"]))
    assert h["ce_id"] == f"{ids['deal']}:2" and h["ce_time"] == at(6).occurred_at.isoformat()
    data = orjson.loads(stage_change.value)
    assert (data["from_stage"], data["to_stage"], data["actor"]) == ("lead", "first_contact", "李娜")
    assert data["reason"].startswith(f"pii:v1:{ids['deal']}:")  # personal text stays sealed on Kafka
    assert crm_pg.keys.unseal(data["reason"]) == "客户回电"


def test_a_customers_events_share_a_key_and_keep_log_order(crm_pg: CrmApplication, relay: KafkaRelay,
                                                           kafka_bootstrap: str, kafka_topic: str) -> None:
    ids = _history(crm_pg)
    while relay.run_batch(limit=5):
        pass

    messages = _consume(kafka_bootstrap, kafka_topic, crm_pg.event_count())
    mine = [m for m in messages if m.key == str(ids["customer"]).encode()]

    types = [decode_headers(m.headers)["ce_type"] for m in mine]
    assert types == ["crm.Lead.Converted", "crm.Customer.Registered", "crm.Deal.Opened", "crm.Deal.StageChanged",
                     "crm.Customer.RespondedToCampaign", "crm.Deal.StageChanged"]
    assert len({m.partition for m in mine}) == 1
    ticket_keys = {m.key for m in messages if decode_headers(m.headers)["ce_subject"] == str(ids["ticket"])}
    assert ticket_keys == {str(ids["other"]).encode()}


def test_a_restarted_relay_resumes_from_its_stored_position(crm_pg: CrmApplication, relay: KafkaRelay,
                                                            kafka_bootstrap: str, kafka_topic: str) -> None:
    _history(crm_pg)
    while relay.run_batch():
        pass
    published = relay.position()
    crm_pg.register_customer(RegisterCustomer("新客户", "华东", "零售", "web"), at(20))

    restarted = KafkaRelay(crm_pg, relay.store, relay.producer, topic=kafka_topic)
    assert restarted.run_batch() == 1 and restarted.run_batch() == 0

    messages = _consume(kafka_bootstrap, kafka_topic, published + 1)
    assert len(messages) == published + 1
    latest = max((decode_headers(m.headers) for m in messages), key=lambda h: int(h["ce_sequence"]))
    assert (latest["ce_type"], int(latest["ce_sequence"])) == ("crm.Customer.Registered", published + 1)
