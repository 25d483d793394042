"""`crm import`'s domain checks on PostgreSQL, with and without worker processes: the first bad line in
file order is named, whichever process found it, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.history import exporter, importer
from services.application import CrmApplication
from services.settings import database_from_url
from tests.unit.services.history.test_rules import record_sale


@pytest.fixture
def lines(tmp_path: Path) -> list[dict]:
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    record_sale(source)
    with (tmp_path / "history.jsonl").open("wb") as out:
        exporter.export_history(source, out)
    source.close()
    return [orjson.loads(line) for line in (tmp_path / "history.jsonl").read_bytes().splitlines()]


def _index(lines: list[dict], event_type: str) -> int:
    return next(i for i, line in enumerate(lines) if line["type"] == event_type)


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_first_rule_broken_in_file_order_is_named_whichever_process_found_it(pg_database, lines, tmp_path,
                                                                               jobs) -> None:
    won = _index(lines, "crm.Deal.Won")
    touch = _index(lines, "crm.Customer.TouchLogged")
    assert won < touch
    lines[won]["data"]["occurred_at"] = "2025-01-01T00:00:00Z"  # found in file order (this process)
    lines[touch]["data"]["channel"] = "fax"  # found by a worker, checking the line's own fields
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    app = CrmApplication(database_from_url(pg_database))

    with pytest.raises(importer.ImportRefused, match=f"^line {won + 1}: crm.Deal.Won .*field 'occurred_at'"):
        importer.import_history(app, bad, batch=4, jobs=jobs)
    lines[won]["data"]["occurred_at"] = "2026-03-07T09:00:00Z"
    bad.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    with pytest.raises(importer.ImportRefused, match=f"^line {touch + 1}: .*field 'channel': unknown touch"):
        importer.import_history(app, bad, batch=4, jobs=jobs)

    assert app.event_count() == 0
    app.close()
