"""The metrics registry and its sources on SQLite: what a scrape shows, each source's one query, failures kept
apart, and the instruments summed over processes (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.metrics import (
    COMMAND_BUCKETS,
    MULTIPROCESS_VARIABLE,
    Gauge,
    Instruments,
    MetricsRegistry,
    Source,
    consumer_group_source,
    partition_offsets_source,
    read_models_source,
    rebuild_source,
    relay_positions,
    relay_source,
    shared_between_processes,
    standard_registry,
)
from services.projection_runtime.projector import start_positions
from services.projection_runtime.rebuild_record import recorded_rebuild
from services.projection_runtime.registry import READ_MODELS, projector_for
from services.settings import database_from_url
from services.sharding.bootstrap import single_log
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.shards import sharded
from tests.unit.services.projection_runtime.test_projection_failures import write_unappliable_event

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CrmApplication]:
    with closing(CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))) as opened:
        yield opened


@pytest.fixture
def store(app: CrmApplication) -> Iterator[ReadModelStore]:
    with closing(ReadModelStore(app.database)) as opened:
        yield opened


def scrape(registry: MetricsRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of one scrape: (name, sorted labels) → value."""
    text, _ = registry.exposition()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode()) for sample in family.samples}


def customers(app: CrmApplication, count: int) -> None:
    for _ in range(count):
        app.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))


def test_instruments_count_commands_by_type_and_outcome_in_buckets() -> None:
    instruments = Instruments(CollectorRegistry())
    instruments.observe_command("ChangeStage", "ok", 0.0015)
    instruments.observe_command("ChangeStage", "ok", 0.2)
    instruments.observe_command("ChangeStage", "conflict", 0.003)

    found = scrape(MetricsRegistry(instruments=instruments))

    ok = (("command", "ChangeStage"), ("outcome", "ok"))
    assert found[("crm_command_duration_seconds_count", ok)] == 2
    assert found[("crm_command_duration_seconds_bucket", tuple(sorted((*ok, ("le", "0.002")))))] == 1
    assert found[("crm_command_duration_seconds_bucket", tuple(sorted((*ok, ("le", "0.256")))))] == 2
    assert found[("crm_command_duration_seconds_count", (("command", "ChangeStage"), ("outcome", "conflict")))] == 1
    assert list(COMMAND_BUCKETS) == sorted(COMMAND_BUCKETS)
    assert COMMAND_BUCKETS[0] <= 0.0006 and 0.16 <= COMMAND_BUCKETS[-1]  # measured p50 … p99 at 16 writers


def test_read_models_show_their_lag_behind_the_head_and_whether_they_are_stopped(app, store) -> None:
    customers(app, 3)
    projector_for(app, store).catch_up()
    customers(app, 2)
    write_unappliable_event(app)  # stops the funnel (and whoever else handles Lead.Assigned) at position 6
    projector_for(app, store, ["funnel", "timeline"]).catch_up(strict=False)

    found = scrape(MetricsRegistry([read_models_source(app, store, list(READ_MODELS))]))

    assert found[("crm_log_head_position", ())] == 6
    assert found[("crm_projection_lag_events", (("partition", "all"), ("read_model", "funnel")))] == 1
    assert found[("crm_read_model_stopped", (("read_model", "funnel"),))] == 1
    assert found[("crm_projection_lag_events", (("partition", "all"), ("read_model", "segments")))] == 3
    assert found[("crm_read_model_stopped", (("read_model", "segments"),))] == 0


def test_relay_lag_is_per_relay_from_its_position_and_its_shards_head(app, store) -> None:
    customers(app, 4)
    projector_for(app, store).setup()
    registry = MetricsRegistry([relay_source(relay_positions(app, store, ["kafka-relay"]))])
    assert not [key for key in scrape(registry) if key[0] == "crm_relay_lag_events"]  # no relay ran yet
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO projection_positions (name, position) VALUES ('kafka-relay', 1)")

    assert scrape(registry)[("crm_relay_lag_events", (("relay", "kafka-relay"), ("shard", "0")))] == 3
    given = MetricsRegistry([relay_source(lambda: [("kafka-relay", 0, 10, 10), ("kafka-relay", 1, 5, 12)])])
    assert scrape(given)[("crm_relay_lag_events", (("relay", "kafka-relay"), ("shard", "1")))] == 7


def test_partition_offsets_show_once_the_table_exists_and_their_lag_once_heads_are_known(store) -> None:
    bare = MetricsRegistry([partition_offsets_source(store)])
    assert not [key for key in scrape(bare) if key[0] == "crm_projection_offset"]
    with store.transaction() as cursor:  # part partproj's table, as it will be
        cursor.execute('CREATE TABLE projection_offsets (name TEXT, partition INTEGER, "offset" BIGINT, '
                       "PRIMARY KEY (name, partition))")
        cursor.executemany('INSERT INTO projection_offsets (name, partition, "offset") VALUES (?, ?, ?)',
                           [("funnel", 0, 41), ("funnel", 1, -1), ("timeline", 0, 50)])
    with_heads = MetricsRegistry([partition_offsets_source(store, lambda: {0: 50, 1: 9})])

    offsets, lags = scrape(bare), scrape(with_heads)

    assert offsets[("crm_projection_offset", (("partition", "1"), ("read_model", "funnel")))] == -1
    assert lags[("crm_projection_lag_events", (("partition", "0"), ("read_model", "funnel")))] == 9
    assert lags[("crm_projection_lag_events", (("partition", "1"), ("read_model", "funnel")))] == 10
    assert lags[("crm_projection_lag_events", (("partition", "0"), ("read_model", "timeline")))] == 0


def test_consumer_group_lag_comes_from_the_function_given_and_is_declared_without_one() -> None:
    hooked = scrape(MetricsRegistry([consumer_group_source(lambda: {("projectors", 3): 12, ("projectors", 4): 0})]))
    empty = MetricsRegistry([consumer_group_source()])

    assert hooked[("crm_consumer_group_lag_events", (("group", "projectors"), ("partition", "3")))] == 12
    assert "crm_consumer_group_lag_events" in empty.names()
    assert scrape(empty)[("crm_metrics_source_up", (("source", "consumer_groups"),))] == 1


def test_rebuild_progress_is_the_positions_against_the_log_when_it_started(app, store) -> None:
    customers(app, 4)
    projector = projector_for(app, store, ["funnel"])
    registry = MetricsRegistry([rebuild_source(store)])
    assert not [key for key in scrape(registry) if key[0].startswith("crm_rebuild")]  # never rebuilt

    with recorded_rebuild(store, ["funnel"], total=4):
        projector.rebuild(limit=1)
        with store.transaction() as cursor:  # as if half-way
            cursor.execute("UPDATE projection_positions SET position = 1 WHERE name = 'funnel'")
        during = scrape(registry)
        projector.catch_up()
    after = scrape(registry)

    funnel = (("read_model", "funnel"),)
    assert during[("crm_rebuild_progress", funnel)] == 0.25 and during[("crm_rebuild_running", funnel)] == 1
    assert during[("crm_rebuild_events_applied", funnel)] == 1 and during[("crm_rebuild_events_total", funnel)] == 4
    assert after[("crm_rebuild_progress", funnel)] == 1 and after[("crm_rebuild_running", funnel)] == 0


def test_a_failing_source_leaves_the_others_and_says_so() -> None:
    def broken() -> dict[str, list[tuple[tuple[str, ...], float]]]:
        raise OSError("database away")

    gauge = Gauge("crm_test_gauge", "a test gauge")
    registry = MetricsRegistry([Source("broken", (gauge,), broken),
                                Source("fine", (Gauge("crm_test_other", "another"),),
                                       lambda: {"crm_test_other": [((), 7)]})])

    found = scrape(registry)

    assert found[("crm_metrics_source_up", (("source", "broken"),))] == 0
    assert found[("crm_metrics_source_up", (("source", "fine"),))] == 1 and found[("crm_test_other", ())] == 7


def test_two_sources_may_fill_one_gauge_only_with_the_same_labels() -> None:
    one = Source("a", (Gauge("crm_test_gauge", "x", ("a",)),), dict)
    other = Source("b", (Gauge("crm_test_gauge", "x", ("b",)),), dict)

    with pytest.raises(ValueError, match="different labels"):
        MetricsRegistry([one, other]).names()


def test_the_standard_registry_names_every_metric_of_the_issue(app, store) -> None:
    names = standard_registry(app, store, list(READ_MODELS), ["kafka-relay"]).names()

    assert {"crm_command_duration_seconds_bucket", "crm_http_requests_total", "crm_projection_lag_events",
            "crm_relay_lag_events", "crm_consumer_group_lag_events", "crm_rebuild_progress",
            "crm_read_model_stopped"} <= names


def test_the_serving_processes_share_one_directory_per_run_removed_at_the_end(monkeypatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_VARIABLE, raising=False)
    with shared_between_processes() as directory:
        assert os.environ[MULTIPROCESS_VARIABLE] == directory and Path(directory).is_dir()
    assert MULTIPROCESS_VARIABLE not in os.environ and not Path(directory).exists()


def test_a_scrape_sums_the_commands_of_every_process_of_the_run(tmp_path: Path, monkeypatch) -> None:
    """Two processes that imported prometheus-client before the directory was named (as gunicorn's arbiter
    does) each count commands; a third, answering the scrape, sums them."""
    program = ("import os, sys, prometheus_client\n"
               f"os.environ[{MULTIPROCESS_VARIABLE!r}] = sys.argv[1]\n"
               "from services.metrics import instruments\n"
               "for _ in range(int(sys.argv[2])): instruments().observe_command('OpenDeal', 'ok', 0.003)\n")
    for count in (3, 4):
        subprocess.run([sys.executable, "-c", program, str(tmp_path), str(count)], cwd=REPO_ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    monkeypatch.setenv(MULTIPROCESS_VARIABLE, str(tmp_path))

    found = scrape(MetricsRegistry())

    assert len(list(tmp_path.glob("histogram_*.db"))) == 2
    assert found[("crm_command_duration_seconds_count", (("command", "OpenDeal"), ("outcome", "ok")))] == 7


def test_over_shards_each_shards_relay_lags_behind_its_own_head_and_no_whole_log_lag_is_shown(tmp_path: Path) -> None:
    databases = [database_from_url(f"sqlite:///{tmp_path / f'shard{i}.sqlite3'}") for i in range(3)]
    with sharded(databases) as crm, closing(ReadModelStore(crm.database)) as store:
        for i, name in ((0, "kafka-relay"), (1, "kafka-relay:1")):  # relays of shards 0 and 1, none of 2
            with store.transaction() as cursor:  # all kept in the default shard (gateways.kafka.relay.relay_name)
                start_positions(cursor, [name])
                cursor.execute("UPDATE projection_positions SET position = ? WHERE name = ?",
                               (crm.apps[i].event_count() - 2, name))
        projector_for(single_log(crm), store).setup()

        found = scrape(standard_registry(crm, store, list(READ_MODELS), ["kafka-relay"]))

    relay_lags = {dict(labels)["shard"]: value for (name, labels), value in found.items()
                  if name == "crm_relay_lag_events"}
    assert relay_lags == {"0": 2, "1": 2}
    assert not [key for key in found if key[0] == "crm_projection_lag_events"]
    assert found[("crm_read_model_stopped", (("read_model", "funnel"),))] == 0
