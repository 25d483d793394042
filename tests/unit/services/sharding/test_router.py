"""`ShardedApplication` on three SQLite files: commands land on their partition's shard, reference data on
every shard (healed by `sync` after a process died between two), idempotent commands keep their receipt
with their events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.base import Meta
from domain.customer import Customer
from domain.partitions import in_partition, partition_of
from domain.pipeline import DEFAULT_PIPELINES, Pipeline, pipeline_id
from services.application import AlreadyExists
from services.command_receipts import Receipt
from services.commands import (AssignLead, CaptureLead, ChangeStage, ContactLead, ConvertLead, InsertStage, OpenDeal,
                               PlanCampaign, QualifyLead, RecordExchangeRate, RegisterCustomer)
from services.settings import database_from_url
from services.sharding import reference
from services.sharding.router import NotSharded, ShardedApplication
from tests.support.shards import sharded, shards_holding

META = Meta(actor="test")


@pytest.fixture
def shards(tmp_path: Path) -> list[Any]:
    return [database_from_url(f"sqlite:///{tmp_path}/shard{i}.db") for i in range(3)]


@pytest.fixture
def crm(shards: list[Any]) -> Iterator[ShardedApplication]:
    with sharded(shards) as app:
        yield app


@contextmanager
def copies_to_shard_two_failing(crm: ShardedApplication, monkeypatch: pytest.MonkeyPatch,
                                error: BaseException) -> Iterator[None]:
    """Copying reference data to shard 2 raises `error` (a dead process, a shard down) inside the block."""
    real = reference.copy_aggregates

    def failing(source: Any, target: Any, *args: Any, **kwargs: Any) -> int:
        if target is crm.apps[2]:
            raise error
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(reference, "copy_aggregates", failing)
    yield
    monkeypatch.setattr(reference, "copy_aggregates", real)


def test_records_land_on_the_shard_of_their_partition(crm: ShardedApplication) -> None:
    for i in range(12):  # partitions 0 … 11: four on each shard (p mod 3), not by chance
        customer = crm.handle(RegisterCustomer("Ann", id=in_partition(i)), META)
        deal = crm.handle(OpenDeal(customer_id=customer, title="T", amount=Decimal(5), currency="EUR"), META)
        home = crm.shard_of(partition_of(customer))
        assert shards_holding(crm, customer) == shards_holding(crm, deal) == [home]
        assert crm.handle(ChangeStage(deal, "proposal"), META) == 2  # opened, then this stage
        assert crm.get(Customer, customer).name == "Ann"
    assert all(count > 3 for count in crm.event_counts())  # 12 customers spread over the 3 shards


def test_a_converted_lead_stays_on_one_shard(crm: ShardedApplication) -> None:
    lead = crm.handle(CaptureLead("Bo", company="B"), META)
    crm.handle(AssignLead(lead, "sam"), META)
    crm.handle(ContactLead(lead, "email", "hello"), META)
    crm.handle(QualifyLead(lead, "fit"), META)
    customer, deal = crm.handle(ConvertLead(lead, "First", Decimal(9), "EUR"), META)
    shard = crm.app_of(lead)
    assert {e.originator_id for e in shard.history(lead)} == {lead}
    assert shard.get(Customer, customer) and list(shard.events.get(deal))


def test_every_shard_holds_the_reference_data_with_the_same_events(crm: ShardedApplication) -> None:
    crm.handle(InsertStage("sales", "demo", "Demo", after="first_contact"), META)
    campaign = crm.handle(PlanCampaign("Spring", "email", Decimal(100)), META)
    for app in crm.apps:
        assert "demo" in app.get(Pipeline, pipeline_id("sales")).stage_keys
        assert [e.__dict__ for e in app.events.get(campaign)] == [e.__dict__ for e in crm.default.events.get(campaign)]


def test_a_write_that_died_between_shards_is_healed_by_sync(crm: ShardedApplication,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with copies_to_shard_two_failing(crm, monkeypatch, KeyboardInterrupt("killed between shard 1 and 2")):
        with pytest.raises(KeyboardInterrupt):
            crm.handle(InsertStage("sales", "demo", "Demo", after="first_contact"), META)
    assert "demo" not in crm.apps[2].get(Pipeline, pipeline_id("sales")).stage_keys
    assert crm.sync() == [0, 0, 1]
    assert crm.sync() == [0, 0, 0]  # idempotent
    assert "demo" in crm.apps[2].get(Pipeline, pipeline_id("sales")).stage_keys


def test_a_shard_that_refused_a_copy_gets_it_with_the_next_reference_write(crm: ShardedApplication,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with copies_to_shard_two_failing(crm, monkeypatch, OSError("connection refused")):
        crm.handle(InsertStage("sales", "demo", "Demo", after="first_contact"), META)  # the write stands
    assert crm.unsynced() == 1
    crm.handle(PlanCampaign("Spring", "email", Decimal(100)), META)
    assert crm.unsynced() == 0
    assert "demo" in crm.apps[2].get(Pipeline, pipeline_id("sales")).stage_keys


def test_a_new_process_syncs_at_start(shards: list[Any], crm: ShardedApplication) -> None:
    crm.apps[2].close()
    crm.apps[0].on_reference_saved = None  # as if it died before copying anything
    crm.handle(InsertStage("sales", "demo", "Demo", after="first_contact"), META)
    again = ShardedApplication(shards)
    try:
        assert "demo" in again.apps[2].get(Pipeline, pipeline_id("sales")).stage_keys
    finally:
        again.close()


def test_an_idempotent_creation_keeps_its_receipt_on_its_records_shard(crm: ShardedApplication) -> None:
    view = crm.staged()
    assert view.receipt("alice", "key-1") is None
    customer = view.handle(RegisterCustomer("Ann"), META)
    receipt = Receipt("alice", "key-1", "print", 201, b"{}", {})
    view.commit(receipt)
    home = crm.apps[crm.shard_of(partition_of(customer))]
    assert home.receipt("alice", "key-1") == receipt
    assert crm.receipt("alice", "key-1") == receipt
    retry = crm.staged()
    retry.receipt("alice", "key-1")
    twin = retry.route(RegisterCustomer("Ann")).command
    assert partition_of(twin.id) == partition_of(customer)  # type: ignore[attr-defined]  # the key's partition


def test_sealed_personal_data_opens_with_its_shards_key(crm: ShardedApplication) -> None:
    customers = [crm.handle(RegisterCustomer("Ann", email=f"a{i}@example.com"), META) for i in range(6)]
    sealed = [e.email for c in customers for e in crm.app_of(c).mapper.to_sealed_events(
        crm.app_of(c).recorder.select_notifications(1, 10_000)) if getattr(e, "originator_id", None) == c
        and hasattr(e, "email")]
    marks = [f"⟦{s}⟧" for s in sealed]
    assert crm.keys.unseal_all_marks(marks) == [f"a{i}@example.com" for i in range(6)]


def test_the_log_read_across_shards_has_every_event_once(crm: ShardedApplication) -> None:
    customers = {crm.handle(RegisterCustomer("Ann"), META) for _ in range(6)}
    events = [event for _, event in crm.read_log()]
    assert {e.originator_id for e in events} == customers | {pipeline_id(k) for k in DEFAULT_PIPELINES}
    assert len(events) == len({(e.originator_id, e.originator_version) for e in events})


def test_what_needs_a_single_log_is_refused_with_a_sentence(crm: ShardedApplication) -> None:
    with pytest.raises(NotSharded, match="one event log of a single database .recorder.*CRM_SHARD_URLS"):
        crm.recorder  # noqa: B018 - the attribute access is the test


def test_a_file_of_rates_reaches_every_shard_in_a_few_saves(crm: ShardedApplication) -> None:
    """300 rates: the other shards' heads come from one pass (not 300 queries), the events from the save."""
    first = date(2025, 1, 1)
    rates = [RecordExchangeRate("USD", Decimal("7.1"), first + timedelta(days=n)) for n in range(300)]
    assert set(crm.record_exchange_rates(rates, META)) == {"recorded"}
    heads = [reference.reference_heads(app) for app in crm.apps]
    assert heads[1] == heads[2] == heads[0] and len(heads[0]) == 300 + len(DEFAULT_PIPELINES)
    assert crm.sync() == [0, 0, 0]


def test_an_external_id_names_one_deal_across_shards(crm: ShardedApplication) -> None:
    """Two customers' deals with one external id would be placed on different shards: the second is refused."""
    customers = [crm.handle(RegisterCustomer(f"Ann{i}"), META) for i in range(12)]
    apart = next(c for c in customers[1:] if crm.shard_of(partition_of(c)) != crm.shard_of(partition_of(customers[0])))
    deal = crm.handle(OpenDeal(customer_id=customers[0], title="T", amount=Decimal(5), source="sf", external_id="1"),
                      META)
    with pytest.raises(AlreadyExists, match=f"external id sf:1 already exists \\(id {deal}\\)"):
        crm.handle(OpenDeal(customer_id=apart, title="T", amount=Decimal(5), source="sf", external_id="1"), META)
