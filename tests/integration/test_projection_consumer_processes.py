"""Three `crm projections consume` processes in one group; one is killed with SIGKILL in the middle of its
work: the others take its partitions, and the read models equal a clean rebuild (nothing lost, nothing
applied twice: its last batch either committed with its offsets or not at all)."""

from __future__ import annotations

import signal
from pathlib import Path
from uuid import uuid4

from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.consumer_group import (applied, assert_equal_to_rebuild, caught_up, end_offsets, random_history,
                                          relay_all, start_member, stop_member, wait_until)
from tests.support.equivalence import apply_history


def test_a_member_killed_mid_batch_hands_its_partitions_to_the_others(
        crm_pg: CrmApplication, postgres_url: str, kafka_bootstrap: str, kafka_topic: str, tmp_path: Path) -> None:
    apply_history(crm_pg, random_history(13, 250), on_sync=lambda: None)
    store = ReadModelStore(crm_pg.database)
    relay_all(crm_pg, store, kafka_bootstrap, kafka_topic)
    ends = end_offsets(kafka_bootstrap, kafka_topic)
    total, group = sum(ends.values()), f"projectors-{uuid4().hex[:8]}"
    logs = [tmp_path / f"member{n}.log" for n in range(3)]
    members = [start_member(log, crm_pg.database.url, kafka_bootstrap, kafka_topic, group, batch=3) for log in logs]
    try:
        wait_until(lambda: applied(store) > total // 10, 60, "the members to start applying", logs)
        members[0].send_signal(signal.SIGKILL)
        assert members[0].wait(timeout=10) == -signal.SIGKILL
        assert applied(store) < total, "the members finished before the kill: make the history longer"
        wait_until(lambda: caught_up(store, ends), 90, "the other two to take the dead member's partitions", logs)
        assert all(member.poll() is None for member in members[1:])
    finally:
        for member, log in zip(members[1:], logs[1:]):
            stop_member(member, log)
        if members[0].poll() is None:
            members[0].kill()
    assert "assigned" in logs[1].read_text() + logs[2].read_text()
    assert_equal_to_rebuild(crm_pg, store, postgres_url, [T0.replace(year=T0.year + 1)])
    store.close()
