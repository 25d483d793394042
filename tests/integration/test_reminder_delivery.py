"""A reminder is emitted exactly once across a kill -9 of `crm reminders run` between emitting and publishing,
and reaches `crm.reminders` once, keyed by its item (real PostgreSQL and Kafka). No stale reminder: a deal that
moved while no process was running is not reminded of the stay it left."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from domain.base import Meta
from domain.partitions import PARTITIONS, partition_of
from domain.reminder_rules import dwell_label
from services.application import CrmApplication
from services.commands import ChangeStage
from tests.support import running_services as services
from tests.support.reminder_delivery import (SECOND, delivered, logged_reminders, open_deals, relaying, set_thresholds,
                                             running, start_cli, wait_for)



@pytest.fixture
def reminders_topic(kafka_bootstrap: str) -> Iterator[str]:
    with services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS, prefix="crm-test-reminders") as topic:
        yield topic


def test_a_reminder_is_emitted_and_published_once_across_a_kill_between_emitting_and_publishing(
        crm_pg: CrmApplication, pg_database: str, kafka_bootstrap: str, kafka_topic: str,
        reminders_topic: str) -> None:
    set_thresholds(crm_pg, [0.8, 2.5])
    first, second, moved = open_deals(crm_pg, 3)
    time.sleep(1)  # their 0.8 s pass while no process runs …
    crm_pg.change_stage(ChangeStage(moved, "first_contact"), Meta.now("李娜"))  # … and then this one moves on

    dying = start_cli("-m", "tests.support.reminders_die_after_emit", pg_database, url=pg_database)
    output, _ = dying.communicate(timeout=60)
    assert dying.returncode == -signal.SIGKILL, output
    expected = {(deal, dwell_label(seconds * SECOND)) for deal in (first, second) for seconds in (0.8, 2.5)}
    saved = {(r.item_id, r.threshold) for r in logged_reminders(crm_pg)}  # one transaction; published by nobody,
    assert {(first, dwell_label(0.8 * SECOND)), (second, dwell_label(0.8 * SECOND))} <= saved <= expected  # not applied

    with relaying(crm_pg, kafka_bootstrap, kafka_topic, reminders_topic) as relay:
        with running("reminders", pg_database):
            wait_for(lambda: len(logged_reminders(crm_pg)) == 4, 60, "the other three reminders")
            wait_for(lambda: relay.position() == crm_pg.event_count(), 60, "the relay to publish them")

    reminders = logged_reminders(crm_pg)
    assert sorted((r.item_id, r.threshold) for r in reminders) == sorted(expected)
    ids = sorted(f"{r.originator_id}:1" for r in reminders)
    on_topic = delivered(kafka_bootstrap, reminders_topic)
    assert sorted(ce_id for ce_id, _, _, _ in on_topic) == ids  # each once: none lost, none twice
    assert {(key, partition) for _, key, partition, _ in on_topic} == {
        (str(deal), partition_of(deal)) for deal in (first, second)}
    assert {ce_type for _, _, _, ce_type in on_topic} == {"crm.Reminder.Emitted"}
    assert sorted(ce_id for ce_id, _, _, ce_type in delivered(kafka_bootstrap, kafka_topic)
                  if ce_type == "crm.Reminder.Emitted") == ids  # crm.events has every event of the log, these too
