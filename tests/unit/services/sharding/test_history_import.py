"""`crm import` into three SQLite shard files: every record on its partition's shard, the reference data on
every shard, the read models those of the same import into one database; a run stopped between two shards'
commits finishes the rest when run again, writing nothing twice; a dry run writes nothing."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from domain.partitions import PARTITIONS, in_partition, is_reference, partition_of
from services.application import CrmApplication
from services.history import exporter, importer
from services.history.csv_import.csv_importer import run_csv_import
from services.history.csv_import.mapping import load_mapping
from services.projection_runtime.partitioned import aggregate_kind
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, summaries
from services.settings import database_from_url
from services.sharding import history_import
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.equivalence import KINDS, SEED_OPERATIONS, apply_history, funnel_answers
from tests.support.shards import sharded

FIXTURES = Path(__file__).parents[4] / "tests" / "fixtures" / "imports"
INSTANTS = [T0 + timedelta(days=d) for d in (-1, 20, 60, 200)]


@pytest.fixture
def shards(tmp_path: Path) -> list[Any]:
    return [database_from_url(f"sqlite:///{tmp_path}/shard{i}.db") for i in range(3)]


@pytest.fixture
def crm(shards: list[Any]) -> Iterator[ShardedApplication]:
    """Empty shards (the history brings its own pipelines)."""
    app = ShardedApplication(shards)
    yield app
    app.close()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history of customers, leads, deals, tickets, campaigns, rates and vocabularies, exported as JSON
    Lines (its records' ids are random: most deals are outside their customer's partition, as in an export
    made before the partition rule)."""
    folder = tmp_path_factory.mktemp("history")
    app = CrmApplication(database_from_url(f"sqlite:///{folder}/source.db"))
    app.ensure_default_pipelines()
    rng = random.Random(13)
    ops = SEED_OPERATIONS + [(rng.choice(KINDS), rng.randrange(50), rng.randrange(480), False) for _ in range(160)]
    apply_history(app, [op for op in ops if op[0] != "forget"], on_sync=lambda: None)
    path = folder / "history.jsonl"
    with path.open("wb") as out:
        exporter.export_history(app, out, lambda done, total: None)
    app.close()
    return path


def legacy(history: Path) -> Path:
    """The history as an export made before the partition rule: the id of every deal without an external id (in
    its subject and wherever a line names it) moved to the next partition, away from its customer's (and, but
    for 63 → 0, its shard). (A deal with one must have the id its external id gives, old or new.)"""
    text = history.read_text()
    for line in text.splitlines():
        record = orjson.loads(line)
        if record["type"] == "crm.Deal.Opened" and not record["data"].get("external_id"):
            old = UUID(record["subject"])
            text = text.replace(str(old), str(in_partition((partition_of(old) + 1) % 64, old)))
    path = history.with_name("legacy.jsonl")
    path.write_text(text)
    return path


@pytest.fixture
def crm_with_pipelines(shards: list[Any]) -> Iterator[ShardedApplication]:
    """The default pipelines defined (the CSV mappings use them beside their own), as `single` has them."""
    with sharded(shards) as app:
        yield app


def single_import(tmp_path: Path, path: Path) -> CrmApplication:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path}/single.db"))
    importer.import_history(app, path)
    return app


def merged(folder: Path, name: str, logs: list[list[Any]]) -> CrmApplication:
    """One database holding the events of `logs` (one per shard), for the ordinary Projector: the reference data
    first, then the records' events merged by business time, each shard's own order kept (`heapq.merge`)."""
    app = CrmApplication(database_from_url(f"sqlite:///{folder}/{name}.db"))
    app.save(*(event for event in logs[0] if is_reference(aggregate_kind(event))))
    records = [[event for event in log if not is_reference(aggregate_kind(event))] for log in logs]
    for event in heapq.merge(*records, key=lambda event: event.occurred_at):
        app.save(event)
    return app


def shard_logs(crm: ShardedApplication) -> list[list[Any]]:
    """Each shard's log, reference data from the default shard only (the others hold copies)."""
    return [[event for _, event in shard.read_log() if i == 0 or not is_reference(aggregate_kind(event))]
            for i, shard in enumerate(crm.apps)]


def spread_as_shards(app: CrmApplication, crm: ShardedApplication) -> list[list[Any]]:
    """One database's log cut as the shards hold it: each record's events on its partition's shard."""
    logs: list[list[Any]] = [[] for _ in crm.apps]
    for _, event in app.read_log():
        logs[0 if is_reference(aggregate_kind(event)) else crm.shard_of(partition_of(event.originator_id))].append(event)
    return logs


def assert_same_history(single: CrmApplication, crm: ShardedApplication, folder: Path) -> None:
    """The shards hold exactly the events of the import into one database (recording times and a CSV import's
    correlation id aside), and their
    merged logs give the read models that database's log gives merged the same way."""
    def facts(logs: list[list[Any]]) -> dict[UUID, list[Any]]:
        found: dict[UUID, list[Any]] = {}
        for event in (e for log in logs for e in log):
            found.setdefault(event.originator_id, []).append(
                {k: v for k, v in vars(event).items() if k not in ("timestamp", "clocked", "correlation_id")})
        return found

    one = spread_as_shards(single, crm)
    assert facts(shard_logs(crm)) == facts(one)
    assert_same_read_models(merged(folder, "one", one), merged(folder, "shards", shard_logs(crm)))


def read_models(app: CrmApplication) -> ReadModelStore:
    store = ReadModelStore(database_from_url("memory://"))
    Projector(app, store, [model() for model in READ_MODELS.values()]).catch_up()
    return store


def assert_same_read_models(one: CrmApplication, other: CrmApplication) -> None:
    mine, theirs = read_models(one), read_models(other)
    for as_of in INSTANTS:
        assert summaries(one, mine, as_of) == summaries(other, theirs, as_of), as_of
        assert funnel_answers(one, mine, as_of) == funnel_answers(other, theirs, as_of), as_of
    mine.close()
    theirs.close()


def assert_placed(crm: ShardedApplication) -> None:
    """Every record on its partition's shard alone; every reference aggregate with the same events everywhere."""
    reference: dict[UUID, list[list[Any]]] = {}
    for shard, app in enumerate(crm.apps):
        for _, event in app.read_log():
            if is_reference(aggregate_kind(event)):
                reference.setdefault(event.originator_id, [[] for _ in crm.apps])[shard].append(
                    (event.originator_version, type(event).__qualname__, event.occurred_at))
            else:
                assert crm.shard_of(partition_of(event.originator_id)) == shard, event
    assert reference and all(copies[0] == copies[1] == copies[2] for copies in reference.values())


@contextmanager
def stopped_after(last: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The import in the block stops (as if killed) right after shard `last` committed its part."""
    def stop(shard: int) -> None:
        if shard == last:
            raise KeyboardInterrupt(f"killed after shard {last}")

    monkeypatch.setattr(history_import, "after_shard_written", stop)
    with pytest.raises(KeyboardInterrupt):
        yield
    monkeypatch.undo()


def away_from_their_customer(crm: ShardedApplication) -> int:
    """Deals whose shard is not their customer's (ids made before the partition rule)."""
    return sum(1 for shard, app in enumerate(crm.apps) for _, event in app.read_log()
               if type(event).__qualname__ == "Deal.Opened" and crm.shard_of(partition_of(event.customer_id)) != shard)


@pytest.mark.parametrize("legacy_ids", [False, True])
def test_event_lines_land_on_their_partitions_shard_and_read_as_one_import(tmp_path: Path, history: Path,
                                                                        crm: ShardedApplication,
                                                                        legacy_ids: bool) -> None:
    path = legacy(history) if legacy_ids else history
    done = history_import.import_sharded_history(crm, path)
    single = single_import(tmp_path, path)
    assert done.written == single.event_count() and sum(done.reference_copied) > 0
    assert all(part.events for part in done.parts) and not done.resumed
    assert_placed(crm)
    assert (away_from_their_customer(crm) > 0) is legacy_ids  # imported all the same, on their own id's shard
    assert_same_history(single, crm, tmp_path)


def test_a_run_stopped_between_shards_finishes_the_rest_when_run_again(history: Path, crm: ShardedApplication,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with stopped_after(1, monkeypatch):
        history_import.import_sharded_history(crm, history)
    heads = crm.event_counts()
    plan = history_import.import_sharded_history(crm, history, dry_run=True)
    assert [p.done for p in plan.parts] == [True, True, False] and crm.event_counts() == heads
    again = history_import.import_sharded_history(crm, history)
    assert again.resumed and [p.done for p in again.parts] == [True, True, False]
    assert again.written == again.parts[2].events and "nothing twice" in again.lines()[-1]
    assert_placed(crm)
    third = history_import.import_sharded_history(crm, history)
    assert third.written == 0 and "imported already" in third.lines()[-1]


def test_a_dry_run_reports_per_shard_and_writes_nothing(history: Path, crm: ShardedApplication) -> None:
    before = crm.event_counts()
    plan = history_import.import_sharded_history(crm, history, dry_run=True)
    assert crm.event_counts() == before and plan.written == 0
    assert [line.split(":")[0] for line in plan.lines()] == ["shard 0", "shard 1", "shard 2"]
    assert all("would be written" in line for line in plan.lines())


def test_a_bad_line_refuses_the_file_on_every_shard(tmp_path: Path, history: Path, crm: ShardedApplication) -> None:
    lines = history.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b'"version":', b'"version":9', 1))
    before = crm.event_counts()
    with pytest.raises(importer.ImportRefused, match=f"line {len(lines)}"):
        history_import.import_sharded_history(crm, bad)
    assert crm.event_counts() == before


@pytest.mark.parametrize("name", ["salesforce/mapping.toml", "hubspot/mapping.toml"])
def test_a_csv_import_lands_on_the_shards_and_reads_as_one_import(tmp_path: Path, name: str,
                                                                  crm_with_pipelines: ShardedApplication) -> None:
    crm = crm_with_pipelines
    mapping = load_mapping(FIXTURES / name)
    report, done = history_import.run_sharded_csv_import(crm, mapping)
    single = CrmApplication(database_from_url(f"sqlite:///{tmp_path}/single.db"))
    single.ensure_default_pipelines(at(-30, "setup"))
    expected = run_csv_import(single, mapping)
    assert report.refused == [] and report.events == expected.events and done is not None
    assert report.written == expected.written
    assert_placed(crm)
    assert_same_history(single, crm, tmp_path)
    again, nothing = history_import.run_sharded_csv_import(crm, mapping)
    assert (again.written, again.events, nothing) == (0, {}, None)


def test_a_csv_import_stopped_between_shards_imports_the_rest_when_run_again(
        crm_with_pipelines: ShardedApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    crm = crm_with_pipelines
    mapping = load_mapping(FIXTURES / "salesforce" / "mapping.toml")
    with stopped_after(0, monkeypatch):
        history_import.run_sharded_csv_import(crm, mapping)
    first = crm.event_counts()
    report, done = history_import.run_sharded_csv_import(crm, mapping)
    assert report.unchanged > 0 and report.written == sum(crm.event_counts()) - sum(first) - sum(
        done.reference_copied if done else [])
    assert_placed(crm)
    plan, _ = history_import.run_sharded_csv_import(crm, mapping, dry_run=True)
    assert plan.events == {}


def test_a_shard_holding_only_some_of_its_part_refuses_the_file(tmp_path: Path, history: Path,
                                                                 crm: ShardedApplication) -> None:
    """An earlier import of the file's first half is not this import's earlier run (which writes a shard's part
    whole): refused naming the line, nothing written, as one database refuses the versions already there."""
    lines = history.read_bytes().splitlines(keepends=True)
    half = tmp_path / "half.jsonl"
    half.write_bytes(b"".join(lines[:len(lines) // 2]))
    history_import.import_sharded_history(crm, half)
    before = crm.event_counts()
    with pytest.raises(history_import.ShardsDisagree, match=r"line \d+: shard \d already holds this line's event"):
        history_import.import_sharded_history(crm, history)
    assert crm.event_counts() == before


def imported_as_legacy(tmp_path: Path, crm: ShardedApplication,
                       write: Callable[[CrmApplication], tuple[UUID, UUID]]) -> tuple[UUID, UUID]:
    """`write` records a history in a single old log and names (a customer, a record of theirs); the history is
    exported as before home partitions — that record's id in a partition of another shard than the customer's
    — and imported into `crm`. Returns (the customer, the record's id there)."""
    with closing(CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'old.sqlite3'}"))) as old:
        old.ensure_default_pipelines(at(-30, "setup"))
        customer, record = write(old)
        path = tmp_path / "old.jsonl"
        with path.open("wb") as out:
            exporter.export_history(old, out, lambda *args: None)
    elsewhere = next(in_partition(p, record) for p in range(PARTITIONS)
                     if crm.shard_of(p) != crm.shard_of(partition_of(customer)))
    path.write_text(path.read_text().replace(str(record), str(elsewhere)))  # a legacy export's id
    history_import.import_sharded_history(crm, path)
    return customer, elsewhere


def test_forgetting_a_customer_blinds_a_legacy_deal_on_another_shard(tmp_path: Path, crm: ShardedApplication) -> None:
    """A deal imported from before home partitions sits where its own id says, maybe on another shard than
    its customer: forgetting the customer must destroy its keys there too (review finding, issue 13)."""
    from domain.base import Meta
    from services.commands import ForgetCustomer, OpenDeal, RegisterCustomer

    def write(old: CrmApplication) -> tuple[UUID, UUID]:
        customer = old.handle(RegisterCustomer("Alice 秘密", "华东", "零售", "web"), at(0))
        return customer, old.handle(OpenDeal(customer, "Alice 秘密's deal", "1000"), at(1))

    customer, deal = imported_as_legacy(tmp_path, crm, write)
    crm.handle(ForgetCustomer(customer), Meta(actor="dpo"))

    assert "秘密" not in str(crm.history(deal)[0].title)


def test_forgetting_a_customer_reads_and_destroys_each_shard_s_keys_once(tmp_path: Path, crm: ShardedApplication,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A lead converted before home partitions may sit on another shard than its customer: it is blinded too,
    while each shard's conversions are read once and its keys destroyed once (the customer's shard used to do
    both twice: once in forget_customer, once more for every shard)."""
    from decimal import Decimal

    from domain.base import Meta
    from services.commands import AssignLead, CaptureLead, ContactLead, ConvertLead, ForgetCustomer, QualifyLead

    def write(old: CrmApplication) -> tuple[UUID, UUID]:
        lead = old.handle(CaptureLead("Bob 秘密", company="秘密公司"), at(0))
        steps = [AssignLead(lead, "sam"), ContactLead(lead, "email", "hi"), QualifyLead(lead, "fit")]
        for n, command in enumerate(steps):
            old.handle(command, at(1 + n))
        customer, _ = old.handle(ConvertLead(lead, "First", Decimal(9), "EUR"), at(5))
        return customer, lead

    customer, lead = imported_as_legacy(tmp_path, crm, write)
    reads, destroys = count_calls(monkeypatch, list(crm.apps), "leads_converted_into"), \
        count_calls(monkeypatch, [app.keys for app in crm.apps], "destroy")

    crm.handle(ForgetCustomer(customer), Meta(actor="dpo"))

    assert "秘密" not in str(crm.history(lead)[0].name)
    assert reads == destroys == [1, 1, 1]


def count_calls(monkeypatch: pytest.MonkeyPatch, objects: list[Any], method: str) -> list[int]:
    """Calls of `method` on each of `objects`, counted in the list returned as they happen."""
    counts = [0] * len(objects)
    for n, target in enumerate(objects):
        def counted(*args: Any, _n: int = n, _real: Any = getattr(target, method), **kwargs: Any) -> Any:
            counts[_n] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(target, method, counted)
    return counts
