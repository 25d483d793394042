"""`crm import` into PostgreSQL (binary COPY under the table lock): the log holds what was exported."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from services.history import exporter, importer
from services.application import CrmApplication
from services.history.import_workers import ImportWorkers
from services.keys.key_store import KeyStore
from services.settings import database_from_url
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
