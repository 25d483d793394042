"""`crm projections consume` processes across a broker outage and a PostgreSQL restart: they wait them out
(saying so in their log), and the read models equal a clean rebuild — nothing lost, nothing applied twice.

These tests stop and start the services through deploy/ (services.run_deploy): run them only against
private instances (CRM_STATE_DIR, CRM_PG_PORT, CRM_KAFKA_PORT, CRM_KAFKA_CONTROLLER_PORT), never shared ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import uuid4

from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.consumer_group import (applied, assert_equal_to_rebuild, caught_up, end_offsets, random_history,
                                          relay_all, start_member, stop_member, wait_until)
from tests.support.equivalence import apply_history

from tests.support import running_services as services


def _logs(paths: list[Path]) -> str:
    return "".join(path.read_text(errors="replace") for path in paths)


def test_members_ride_out_a_broker_outage_and_a_postgresql_restart(
        crm_pg: CrmApplication, postgres_url: str, kafka_bootstrap: str, kafka_topic: str, tmp_path: Path) -> None:
    history = random_history(17, 240)
    apply_history(crm_pg, history[:80], on_sync=lambda: None)
    store = ReadModelStore(crm_pg.database)
    relay_all(crm_pg, store, kafka_bootstrap, kafka_topic)
    logs, group = [tmp_path / f"member{n}.log" for n in range(2)], f"projectors-{uuid4().hex[:8]}"
    members = [start_member(log, crm_pg.database.url, kafka_bootstrap, kafka_topic, group, batch=5) for log in logs]
    try:
        wait_until(lambda: applied(store) > 0, 60, "the members to start applying", logs)
        services.run_deploy("kafka.sh", "stop", timeout=120)  # the broker goes away mid-consumption
        apply_history(crm_pg, history[80:160], on_sync=lambda: None)  # commands go on meanwhile
        time.sleep(2)
        services.run_deploy("kafka.sh", "start", timeout=180)
        relay_all(crm_pg, store, kafka_bootstrap, kafka_topic)
        ends = end_offsets(kafka_bootstrap, kafka_topic)
        wait_until(lambda: caught_up(store, ends), 120, "the members to catch up after the broker came back", logs)

        apply_history(crm_pg, history[160:], on_sync=lambda: None)
        relay_all(crm_pg, store, kafka_bootstrap, kafka_topic)
        ends = end_offsets(kafka_bootstrap, kafka_topic)
        services.run_deploy("postgres.sh", "stop", timeout=120)  # the read store goes away mid-consumption
        try:
            wait_until(lambda: "retrying in" in _logs(logs), 60, "the members to meet the outage", logs)
        finally:
            services.run_deploy("postgres.sh", "start", timeout=300)
        wait_until(lambda: caught_up(store, ends), 120, "the members to catch up after the restart", logs)
        assert all(member.poll() is None for member in members), _logs(logs)[-4000:]
    finally:
        for member, log in zip(members, logs):
            stop_member(member, log)
    assert_equal_to_rebuild(crm_pg, store, postgres_url, [T0.replace(year=T0.year + 1)])
    store.close()
