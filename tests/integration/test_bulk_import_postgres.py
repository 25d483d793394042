"""`crm import` into PostgreSQL (binary COPY under the table lock): the log holds what was exported."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import orjson
import pytest

from domain.deal import Deal
from services.history import exporter, importer
from services.application import CrmApplication
from services.commands import ForgetCustomer, OpenDeal, RegisterCustomer
from services.history.import_workers import ImportWorkers
from services.keys.key_store import KeyStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.history_of_every_event import record_every_event


def _export(app: CrmApplication, path: Path) -> Path:
    with path.open("wb") as out:
        exporter.export_history(app, out)
    return path


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    record_every_event(source)
    path = _export(source, tmp_path / "history.jsonl")
    source.close()
    return path


@pytest.mark.parametrize("jobs", [1, 2])  # 2: worker processes check and encode the lines
def test_every_event_type_imported_by_copy_exports_to_the_same_file_in_a_gap_free_log(pg_database, exported,
                                                                                       tmp_path, jobs) -> None:
    app = CrmApplication(database_from_url(pg_database))

    count = importer.import_history(app, exported, batch=10, jobs=jobs)

    assert [n for n, _ in app.read_log()] == list(range(1, count + 1))
    assert _export(app, tmp_path / "again.jsonl").read_bytes() == exported.read_bytes()
    app.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_refused_file_writes_nothing_to_postgres(pg_database, exported, tmp_path, jobs) -> None:
    lines = exported.read_bytes().splitlines()
    last = orjson.loads(lines[-1])
    last["version"] += 1
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join([*lines[:-1], orjson.dumps(last)]) + b"\n")
    app = CrmApplication(database_from_url(pg_database))

    with pytest.raises(importer.ImportRefused, match=f"line {len(lines)}:"):
        importer.import_history(app, bad, batch=10, jobs=jobs)

    assert app.event_count() == 0
    assert app.keys.store.query("SELECT COUNT(*) FROM crm_personal_keys") == [(0,)]
    app.close()


def test_a_key_another_writer_made_during_the_import_fails_it_whole(pg_database, exported, monkeypatch) -> None:
    """The import's keys go into the key table at the end of its transaction: one that appeared meanwhile (so
    the import sealed with another) must not be kept silently, or those seals would never open."""
    app = CrmApplication(database_from_url(pg_database))
    subject = next(line["subject"] for line in map(orjson.loads, exported.read_bytes().splitlines())
                   if line["type"] == "crm.Customer.Registered")
    monkeypatch.setattr(KeyStore, "secrets", lambda keys, subjects: {})  # blind to the key table
    app.keys.ensure([subject])  # as if made by a command between the worker's look-up and the commit

    with pytest.raises(RuntimeError, match="1 records of the file got a key from another writer"):
        importer.import_history(app, exported, batch=10, jobs=1)

    assert app.event_count() == 0
    assert app.keys.store.query("SELECT COUNT(*) FROM crm_personal_keys") == [(1,)]
    app.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_changed_after_its_check_rolls_back_the_copy_of_the_batch_that_changed(pg_database, exported,
                                                                                      tmp_path, jobs) -> None:
    app = CrmApplication(database_from_url(pg_database))
    with exported.open("rb") as file:
        checked = importer.check_history(app, file, batch=10)
    changed = tmp_path / "changed.jsonl"
    changed.write_bytes(exported.read_bytes().replace("已远程协助处理".encode(), "已远程处理".encode()))

    workers = ImportWorkers(pg_database, jobs, datetime.now(timezone.utc)) if jobs > 1 else None

    with changed.open("rb") as file, pytest.raises(importer.FileChanged):
        importer.HistoryWriter(app, 10, workers).write(file, checked, lambda done: None)

    if workers:
        workers.close()

    assert app.event_count() % 10 == 0 and app.event_count() < checked.events
    assert [n for n, _ in app.read_log()] == list(range(1, app.event_count() + 1))
    app.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_first_bad_line_is_named_whichever_process_found_it(pg_database, exported, tmp_path, jobs) -> None:
    lines = exported.read_bytes().splitlines()
    third = orjson.loads(lines[2])
    third["version"] += 5  # found by this process (versions)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join([*lines[:2], orjson.dumps(third), lines[3], b"{not json", *lines[5:]]) + b"\n")
    app = CrmApplication(database_from_url(pg_database))

    with pytest.raises(importer.ImportRefused, match="^line 3: .*expected version"):
        importer.import_history(app, bad, batch=10, jobs=jobs)
    bad.write_bytes(b"\n".join([*lines[:4], b"{not json", *lines[5:]]) + b"\n")  # found by a worker (parsing)
    with pytest.raises(importer.ImportRefused, match="^line 5: not valid JSON"):
        importer.import_history(app, bad, batch=10, jobs=jobs)

    assert app.event_count() == 0
    app.close()


def test_a_customer_forgotten_during_an_import_leaves_no_readable_record_of_theirs(pg_database, tmp_path,
                                                                                   monkeypatch) -> None:
    """The forgetting waits for the import holding the key table (derived_keys.HOLD_KEYS), then deletes the
    keys the import placed for the customer's new deal too (review of issue 14: the deal stayed readable)."""
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    source.ensure_default_pipelines(at(-30, "setup"))
    customer = source.register_customer(RegisterCustomer("王芳"), at(0))
    first = _export(source, tmp_path / "first.jsonl").read_bytes()
    deal = source.open_deal(OpenDeal(customer, "王芳的云服务采购", "1000"), at(1))
    everything = _export(source, tmp_path / "all.jsonl").read_bytes()
    source.close()
    (tmp_path / "first.jsonl").write_bytes(first)
    (tmp_path / "second.jsonl").write_bytes(everything[len(first):])

    app = CrmApplication(database_from_url(pg_database))
    importer.import_history(app, tmp_path / "first.jsonl", jobs=1)   # the customer is in the log

    inside = threading.Event()
    write = importer.OnePassCopy.write

    def slow_write(self, batch):  # the import, between its COPY and its commit
        write(self, batch)
        inside.set()
        time.sleep(1.5)

    monkeypatch.setattr(importer.OnePassCopy, "write", slow_write)
    importing = threading.Thread(target=importer.import_history, args=(app, tmp_path / "second.jsonl"),
                                 kwargs={"jobs": 1})
    importing.start()
    assert inside.wait(10)
    other = CrmApplication(database_from_url(pg_database))  # another process forgets the customer meanwhile
    other.forget_customer(ForgetCustomer(customer), at(2))  # waits for the import's table lock, then saves
    importing.join(10)

    assert [type(e).__name__ for e in other.history(customer)][-1] == "Forgotten"
    left = app.keys.store.query("SELECT subject_id, person_id FROM crm_personal_keys")
    assert (str(deal), str(customer)) not in left, f"the forgotten customer's deal still has its key: {left}"
    other.close()
    app.close()


def test_the_import_asks_the_key_table_for_keys_only_if_it_held_one_once_locked(pg_database, exported) -> None:
    """An empty key table, once the import holds it (derived_keys.HOLD_KEYS), stays empty until the import
    commits: its workers then need not look up each chunk's keys (`ANY_KEY`); one key held means they do."""
    app = CrmApplication(database_from_url(pg_database))
    with importer.one_transaction(app) as copy:
        assert copy.keys_held is False
    app.keys.ensure([str(uuid4())])
    with importer.one_transaction(app) as copy:
        assert copy.keys_held is True
    app.close()


def test_keys_staged_into_an_empty_key_table_are_placed_as_into_a_held_one(pg_database) -> None:
    """Into a key table empty once locked the import places its staged keys with a plain INSERT
    (`derived_keys.KEYS_INTO_EMPTY`): one row per record, its person wherever a row names it, as KEYS_FROM_STAGING."""
    from services.keys.derived_keys import KEYS_FROM_STAGING, KEYS_INTO_EMPTY, STAGING

    one, two, three, person = (str(uuid4()) for _ in range(4))
    staged = [(one, "s1", None), (two, "s2", None), (one, "s1", person), (one, "s1", None), (three, "s3", person),
              (two, "s2", None), ("Z" + one[1:], "s4", None)]  # upper and lower case: sorted bytewise all the same
    app = CrmApplication(database_from_url(pg_database))
    placed = {}
    for statement in (KEYS_INTO_EMPTY, KEYS_FROM_STAGING):
        with app.recorder.datastore.get_connection() as connection, connection.transaction(force_rollback=True), \
                connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} (subject_id TEXT, secret TEXT, person_id TEXT) "
                           "ON COMMIT DROP")
            with cursor.copy(f"COPY {STAGING} FROM STDIN") as copy:
                for row in staged:
                    copy.write_row(row)
            cursor.execute(statement)
            cursor.execute("SELECT subject_id, secret, person_id FROM crm_personal_keys ORDER BY subject_id")
            placed[statement] = [tuple(row.values()) for row in cursor.fetchall()]
    assert placed[KEYS_INTO_EMPTY] == placed[KEYS_FROM_STAGING] == sorted(
        [(one, "s1", person), (two, "s2", None), (three, "s3", person), ("Z" + one[1:], "s4", None)])
    app.close()


@pytest.mark.parametrize("jobs", [1, 2])  # 2: worker processes, which must look the held key up too
def test_a_held_key_without_its_person_is_bound_by_the_import_so_forgetting_the_person_reaches_it(
        pg_database, tmp_path, jobs) -> None:
    """A record's key may be in the table without its person (an import that stopped part-way, a command
    that made it before the record's creation came by): the import binds the person its creation line names,
    as KeyStore.ensure does, else forgetting the customer left the deal readable (review of issue 14, P3)."""
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    source.ensure_default_pipelines(at(-30, "setup"))
    customer = source.register_customer(RegisterCustomer("王芳"), at(0))
    deal = source.open_deal(OpenDeal(customer, "王芳的云服务采购", "1000"), at(1))
    _export(source, tmp_path / "all.jsonl")
    source.close()
    app = CrmApplication(database_from_url(pg_database))
    app.keys.ensure([str(deal)])  # held, bound to nobody

    importer.import_history(app, tmp_path / "all.jsonl", jobs=jobs)

    assert app.keys.store.query("SELECT person_id FROM crm_personal_keys WHERE subject_id = ?",
                                [str(deal)]) == [(str(customer),)]
    assert app.get(Deal, deal).title == "王芳的云服务采购"  # sealed with the key it held
    app.forget_customer(ForgetCustomer(customer), at(2))
    assert app.keys.store.query("SELECT COUNT(*) FROM crm_personal_keys WHERE subject_id = ?", [str(deal)]) == [(0,)]
    app.close()
