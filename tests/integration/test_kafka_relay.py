"""The relay on the real PostgreSQL and Kafka: every event published once per run, as CloudEvents, in its
record's home partition (a deal's and a ticket's: their customer's; reference data: every partition) so each
customer's events stay in order, with the position saved after the ack."""

import os
import subprocess
import sys
from collections.abc import Iterator
from uuid import UUID

import orjson
import pytest

from domain.partitions import PARTITIONS, is_reference, partition_of
from gateways.kafka.cloudevents import decode_headers
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ChangeStage, ContactLead, ConvertLead, LaunchCampaign,
                               OpenTicket, PlanCampaign, QualifyLead, RecordResponse, RegisterCustomer, ResolveTicket)
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.topics import read_topic

from tests.support import running_services as services


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


def _consume(bootstrap: str, topic: str) -> list:
    return read_topic(bootstrap, topic)


def test_every_event_is_published_as_a_cloudevent(crm_pg: CrmApplication, relay: KafkaRelay,
                                                  kafka_bootstrap: str, kafka_topic: str) -> None:
    ids = _history(crm_pg)
    while relay.run_batch(limit=7):
        pass

    reference = sum(is_reference(type(e).__qualname__.split(".")[0]) for _, e in crm_pg.read_log())
    messages = _consume(kafka_bootstrap, kafka_topic)

    assert crm_pg.event_count() == relay.position()
    headers = [decode_headers(m.headers) for m in messages]
    assert len(messages) == crm_pg.event_count() + (PARTITIONS - 1) * reference  # reference data: each partition
    assert len({(h["ce_id"], m.partition) for h, m in zip(headers, messages)}) == len(messages)  # each once
    assert len({h["ce_id"] for h in headers}) == crm_pg.event_count()
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

    messages = _consume(kafka_bootstrap, kafka_topic)
    home = partition_of(ids["customer"])
    mine = [m for m in messages if m.key == str(ids["customer"]).encode() and m.partition == home]

    types = [decode_headers(m.headers)["ce_type"] for m in mine]
    assert partition_of(ids["lead"]) == home  # a converted customer is made in its lead's partition
    assert types == ["crm.Lead.Converted", "crm.Customer.Registered", "crm.Deal.Opened", "crm.Deal.StageChanged",
                     "crm.Customer.RespondedToCampaign", "crm.Deal.StageChanged"]
    ticket = {(m.key, m.partition) for m in messages if decode_headers(m.headers)["ce_subject"] == str(ids["ticket"])}
    assert ticket == {(str(ids["other"]).encode(), partition_of(ids["other"]))}  # the customer's partition


def test_a_restarted_relay_resumes_from_its_stored_position(crm_pg: CrmApplication, relay: KafkaRelay,
                                                            kafka_bootstrap: str, kafka_topic: str) -> None:
    _history(crm_pg)
    while relay.run_batch():
        pass
    published = relay.position()
    crm_pg.register_customer(RegisterCustomer("新客户", "华东", "零售", "web"), at(20))

    restarted = KafkaRelay(crm_pg, relay.store, relay.producer, topic=kafka_topic)
    assert restarted.run_batch() == 1 and restarted.run_batch() == 0

    messages = _consume(kafka_bootstrap, kafka_topic)
    assert len({decode_headers(m.headers)["ce_id"] for m in messages}) == published + 1
    latest = max((decode_headers(m.headers) for m in messages), key=lambda h: int(h["ce_sequence"]))
    assert (latest["ce_type"], int(latest["ce_sequence"])) == ("crm.Customer.Registered", published + 1)


def test_the_relay_refuses_a_topic_with_another_number_of_partitions(crm_pg: CrmApplication,
                                                                     kafka_bootstrap: str) -> None:
    with services.temporary_topic(kafka_bootstrap, partitions=3) as topic:
        done = subprocess.run([sys.executable, "-m", "gateways.cli.main", "relay", "--once", "--topic", topic],
                              cwd=services.REPO_ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CRM_DATABASE_URL": crm_pg.database.url,
                                   "CRM_KAFKA_BOOTSTRAP": kafka_bootstrap})
    assert done.returncode == 1 and "has 3 partitions" in done.stderr and "needs 64" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def _relay_once(crm: CrmApplication, bootstrap: str, topic: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateways.cli.main", "relay", "--once", "--topic", topic, *flags],
                          cwd=services.REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CRM_DATABASE_URL": crm.database.url, "CRM_KAFKA_BOOTSTRAP": bootstrap})


def test_a_recreated_topic_is_refused_until_the_whole_log_is_published_to_it_again(crm_pg: CrmApplication,
                                                                                   kafka_bootstrap: str) -> None:
    """Review finding (issue 13): the stored position would skip the history a recreated topic lost."""
    _history(crm_pg)
    with services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS) as first:
        assert _relay_once(crm_pg, kafka_bootstrap, first).returncode == 0
    with services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS) as again:  # empty, the position > 0
        refused = _relay_once(crm_pg, kafka_bootstrap, again)
        published = _relay_once(crm_pg, kafka_bootstrap, again, "--from-start")
        ids = {decode_headers(m.headers)["ce_id"] for m in _consume(kafka_bootstrap, again)}

    assert refused.returncode == 1 and "is empty (deleted and created again?)" in refused.stderr, refused.stderr
    assert "--from-start" in refused.stderr and "Traceback" not in refused.stderr
    assert published.returncode == 0, published.stderr
    assert len(ids) == crm_pg.event_count()
