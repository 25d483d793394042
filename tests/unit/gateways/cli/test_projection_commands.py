"""`crm projections follow | consume | reset` keep one feeder per read model: each refuses, with a sentence
saying what to do, a read model the other kind of feeder feeds (exit 1); over shards, `status` shows the
consumers' table first and `reset` empties read models the consumers then build again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.projection_runtime.partitioned import PartitionedProjector
from services.projection_runtime.registry import READ_MODELS, projector_for
from services.settings import database_from_url
from services.sharding.bootstrap import single_log
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore
from tests.support.shard_feed import ShardFeed

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One customer in an SQLite log that the commands find (CRM_DATABASE_URL)."""
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "400")  # the refusal's sentence on few lines
    with crm_application() as crm:
        crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), Meta(actor="test"))
    return url


def _consumers_fed_the_funnel(url: str) -> None:
    """As a `crm projections consume` member leaves it: the funnel's offset in partition 0."""
    crm = CrmApplication(database_from_url(url))
    store = ReadModelStore(crm.database)
    projector_for(crm, store)  # the tables
    with store.transaction() as cursor:
        cursor.execute('INSERT INTO projection_offsets (name, "partition", "offset") VALUES (\'funnel\', 0, 0)')
    store.close()
    crm.close()


def _positions(url: str) -> dict[str, int]:
    crm = CrmApplication(database_from_url(url))
    store = ReadModelStore(crm.database)
    try:
        return projector_for(crm, store).positions()
    finally:
        store.close()
        crm.close()


def test_follow_refuses_read_models_consumers_feed(sqlite_url: str) -> None:
    _consumers_fed_the_funnel(sqlite_url)

    result = runner.invoke(app, ["projections", "follow"])

    assert result.exit_code != 0
    assert "funnel are fed per partition by `crm projections consume`" in " ".join(result.output.split())
    assert set(_positions(sqlite_url).values()) == {0}  # nothing fed


def test_consume_refuses_read_models_the_follower_fed_until_they_are_reset(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateways.kafka.relay.ensure_events_topic", lambda bootstrap, topic: None)  # no broker
    assert runner.invoke(app, ["projections", "catch-up"]).exit_code == 0  # the follower fed them all

    result = runner.invoke(app, ["projections", "consume", "funnel", "--once"])

    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert "funnel are fed by the log follower" in said and "crm projections reset funnel" in said
    assert runner.invoke(app, ["projections", "reset", "funnel"]).exit_code == 0
    assert _positions(sqlite_url)["funnel"] == 0 and _positions(sqlite_url)["timeline"] > 0


@pytest.fixture
def consumed_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ShardedApplication, ShardFeed]]:
    """Three SQLite shards (CRM_SHARD_URLS) with customers in several partitions, their read models fed by
    partitions as the relays and `crm projections consume` feed them."""
    shards = [database_from_url(f"sqlite:///{tmp_path}/shard{i}.sqlite3") for i in range(3)]
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(shard.url for shard in shards))
    monkeypatch.setenv("COLUMNS", "200")
    crm = ShardedApplication(shards)
    store = ReadModelStore(crm.database)
    try:
        crm.ensure_default_pipelines(Meta(actor="test"))
        for name in ("张三", "李四", "王五", "赵六"):
            crm.handle(RegisterCustomer(name, "华东", "零售", "web"), Meta(actor="test"))
        feed = ShardFeed(crm, PartitionedProjector(store, projector_for(single_log(crm), store).models))
        feed.feed()
        yield crm, feed
    finally:
        store.close()
        crm.close()


def _rows(store: ReadModelStore, name: str) -> dict[str, list[Any]]:
    return {table.name: sorted(map(repr, store.query(f"SELECT * FROM {table.name}")))
            for table in READ_MODELS[name]().tables}


def test_over_shards_status_shows_the_consumers_partitions_first_and_no_follower_lag(
        consumed_shards: tuple[ShardedApplication, ShardFeed]) -> None:
    result = runner.invoke(app, ["projections", "status"])

    assert result.exit_code == 0, result.output
    assert result.output.lstrip().startswith("Fed by `crm projections consume`, per partition"), result.output
    assert re.search(rf"│\s+0\s+│.*│\s+{len(READ_MODELS)}/{len(READ_MODELS)}\s+│\s+running", result.output)
    assert "Log head" not in result.output  # the follower feeds none: its position 0 of the head is no lag


def test_over_shards_reset_empties_read_models_which_the_consumers_build_again_from_the_start(
        consumed_shards: tuple[ShardedApplication, ShardFeed]) -> None:
    crm, feed = consumed_shards
    store = feed.projector.store
    funnel, timeline = _rows(store, "funnel"), _rows(store, "timeline")

    result = runner.invoke(app, ["projections", "reset", "funnel"])

    assert result.exit_code == 0, result.output
    assert not any(_rows(store, "funnel").values()) and _rows(store, "timeline") == timeline
    assert not store.query("SELECT * FROM projection_offsets WHERE name = 'funnel'")
    again = ShardFeed(crm, feed.projector)  # a consumer from the topic's start: the others pass it by
    again.feed()
    assert _rows(store, "funnel") == funnel and _rows(store, "timeline") == timeline
