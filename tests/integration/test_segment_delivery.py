"""A segment change is recorded exactly once across a kill -9 of `crm segments run` between recording and
publishing, and between finding it and recording it — one of them a change by the mere ageing of a purchase,
falling due while the test runs — and reaches `crm.segments` once, keyed by its customer, in the customer's home
partition, with the CloudEvent id its derived id gives (real PostgreSQL and Kafka)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta

import pytest

from domain.base import Meta, utc_now
from domain.partitions import PARTITIONS, partition_of
from domain.segment_change_rules import SegmentChange, change_id
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, WinDeal
from services.segment_process import SegmentChangeProcess
from services.storage.read_model_store import ReadModelStore
from tests.support import running_services as services
from tests.support.reminder_delivery import delivered, relaying, running, wait_for
from tests.support.segments_die import killed

AGES_IN = timedelta(seconds=2)  # the purchase turns 90 days old (high value → potential) this long after setup


@pytest.fixture
def segments_topic(kafka_bootstrap: str) -> Iterator[str]:
    with services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS, prefix="crm-test-segments") as topic:
        yield topic


def _recorded(crm: CrmApplication) -> list[SegmentChange.Recorded]:
    return [event for _, event in crm.read_log() if isinstance(event, SegmentChange.Recorded)]


def test_a_segment_change_is_recorded_and_published_once_across_kills_before_and_after_recording(
        crm_pg: CrmApplication, pg_database: str, kafka_bootstrap: str, kafka_topic: str,
        segments_topic: str) -> None:
    newcomer = crm_pg.register_customer(RegisterCustomer("李雷", "华北", "制造", "web"), Meta.now("李娜"))
    killed("after-record", pg_database)  # its first change saved, seen by nobody (its read model, the relay)
    assert [(e.customer_id, e.old_tier, e.new_tier) for e in _recorded(crm_pg)] == [(newcomer, "", "ordinary")]

    now = utc_now()
    ages_at = now + AGES_IN
    bought = ages_at - timedelta(days=90)  # 200,000 CNY: R 4 (F + M 4) until 90 days old, then R 3: potential
    buyer = crm_pg.register_customer(RegisterCustomer("王芳", "华东", "零售", "web", company="杭州云启"),
                                     Meta(occurred_at=bought - timedelta(days=10), actor="李娜"))
    deal = crm_pg.open_deal(OpenDeal(buyer, "云服务采购", "200000", owner="李娜"),
                            Meta(occurred_at=bought - timedelta(days=10), actor="李娜"))
    crm_pg.win_deal(WinDeal(deal, "签约"), Meta(occurred_at=bought, actor="李娜"))
    with closing(ReadModelStore(crm_pg.database)) as store:  # its high value announced before it ages
        process = SegmentChangeProcess(crm_pg, store, lambda: now)
        for _ in range(3):
            process.run_step()
    assert [(e.customer_id, e.old_tier, e.new_tier) for e in _recorded(crm_pg)][1:] == [(buyer, "", "high_value")]
    killed("before-record", pg_database)  # waits for the ageing instant, finds the change, dies before saving it
    assert utc_now() >= ages_at and len(_recorded(crm_pg)) == 2

    with relaying(crm_pg, kafka_bootstrap, kafka_topic, None, segments=segments_topic) as relay:
        with running("segments", pg_database):
            wait_for(lambda: len(_recorded(crm_pg)) == 3, 60, "the change by ageing")
            time.sleep(0.5)  # a repeat would be recorded by now
            wait_for(lambda: relay.position() == crm_pg.event_count(), 60, "the relay to publish them")

    changes = _recorded(crm_pg)
    aged = ages_at + timedelta(microseconds=1)
    assert [(e.customer_id, e.old_tier, e.new_tier, e.changed_at) for e in changes][2:] == [
        (buyer, "high_value", "potential", aged)]
    assert all(e.originator_id == change_id(e.customer_id, e.sequence) for e in changes)
    ids = sorted(f"{e.originator_id}:1" for e in changes)
    on_topic = delivered(kafka_bootstrap, segments_topic)
    assert sorted(ce_id for ce_id, _, _, _ in on_topic) == ids  # each once: none lost, none twice
    assert sorted((key, partition) for _, key, partition, _ in on_topic) == sorted(
        (str(e.customer_id), partition_of(e.customer_id)) for e in changes)
    assert {ce_type for _, _, _, ce_type in on_topic} == {"crm.SegmentChange.Recorded"}
    assert sorted(ce_id for ce_id, _, _, ce_type in delivered(kafka_bootstrap, kafka_topic)
                  if ce_type == "crm.SegmentChange.Recorded") == ids  # crm.events has every event of the log
