"""An export edited line by line and imported into a new log: how the import-rule tests make a history file a
process could not have written (another record's id, an unknown value)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from services.application import CrmApplication
from services.history import exporter, importer
from services.settings import database_from_url


def sqlite_app(path: Path) -> CrmApplication:
    return CrmApplication(database_from_url(f"sqlite:///{path}"))


def import_edited(source: CrmApplication, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> CrmApplication:
    """Export `source` to a file in `tmp_path`, `edit` each line (a dict), import the file into a new SQLite log
    (`target.db` there), and return it; whatever the import raises is raised."""
    path = tmp_path / "h.jsonl"
    with path.open("wb") as out:
        exporter.export_history(source, out)
    lines = [orjson.loads(raw) for raw in path.read_bytes().splitlines()]
    for line in lines:
        edit(line)
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    target = sqlite_app(tmp_path / "target.db")
    importer.import_history(target, path, batch=4)
    return target
