"""`crm import` into PostgreSQL writes the same log and the same keys whether its workers run the compiled path
(the crm_native extension) or the Python path (CRM_IMPORT_NATIVE=0): the events table row for row (personal
fields compared unsealed: nonces and the import's secret are random) and the key table (subjects, persons)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.application import CrmApplication
from services.history import exporter, importer
from services.history.native_encoder import OFF, available
from services.settings import database_from_url
from tests.support import running_services as services
from tests.benchmarks.history import make_history
from tests.support.history_of_every_event import record_every_event

pytestmark = pytest.mark.skipif(not available(), reason="crm_native is not built here (no cargo)")
_SEAL = re.compile(r'"pii:v1:([0-9a-f-]{36}):([A-Za-z0-9_=-]+)"')


def _imported(url: str, path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The log's rows (seals opened with the imported keys) and its key table without the secrets."""
    app = CrmApplication(database_from_url(url))
    assert importer.import_history(app, path, batch=50, jobs=2) > 0
    table = app.recorder.events_table_name  # type: ignore[attr-defined]
    app.close()
    with psycopg.connect(url) as connection:
        keys = {s: (base64.b64decode(secret), person) for s, secret, person in connection.execute(
            "SELECT subject_id, secret, person_id FROM crm_personal_keys")}
        rows = connection.execute(f"SELECT notification_id, originator_id, originator_version, topic, state "
                                  f"FROM {table} ORDER BY notification_id").fetchall()

    def opened(seal: re.Match[str]) -> str:
        subject, sealed = seal.group(1), base64.urlsafe_b64decode(seal.group(2))
        plain = AESGCM(keys[subject][0]).decrypt(sealed[:12], sealed[12:], subject.encode())
        return f'"opened:{plain.decode()}"'
    return ([(*row[:4], _SEAL.sub(opened, bytes(row[4]).decode())) for row in rows],
            sorted((subject, person) for subject, (_, person) in keys.items()))


def _every_event(tmp_path: Path) -> Path:
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    record_every_event(source)
    path = tmp_path / "history.jsonl"
    with path.open("wb") as out:
        exporter.export_history(source, out)
    source.close()
    return path


def _demo(tmp_path: Path) -> Path:
    """The benchmark's generated history, small: many records, sealed fields, chunks of mixed types."""
    return make_history(3000, tmp_path).path


@pytest.mark.parametrize("history", [_every_event, _demo])
def test_the_compiled_and_the_python_path_import_the_same_log_and_keys(postgres_url: str, tmp_path: Path, history,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = history(tmp_path)
    with services.temporary_database(postgres_url) as native_url, services.temporary_database(postgres_url) as url:
        native = _imported(native_url, path)
        monkeypatch.setenv(OFF, "0")  # the workers (spawned after this) run the Python path
        python = _imported(url, path)
    assert native == python
    assert any("opened:" in row[4] for row in native[0])  # personal fields were sealed, and compared opened
