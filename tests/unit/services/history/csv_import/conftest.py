"""Fixtures of the CSV import tests: the sample exports, a small mapping and CSV files written per test,
and an empty log (memory) to plan or import into."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from uuid import UUID

from domain.external_ids import external_uuid
from domain.partitions import in_partition

from services.application import CrmApplication
from services.history.csv_import.mapping import Mapping, load_mapping
from services.settings import database_from_url

FIXTURES = Path(__file__).parents[5] / "tests" / "fixtures" / "imports"

# A small mapping for row-level tests: pipeline p (a, b, c), accounts and opportunities in UTC.
MAPPING = """
source = "crm1"
timezone = "UTC"
currency = "USD"
actor = "import:test"
date_formats = ["%d.%m.%Y"]
[defaults]
channel = "web"
[[pipelines]]
key = "p"
name = "Pipeline P"
stages = [{ key = "a", label = "Stage A" }, { key = "b", label = "Stage B" }, { key = "c", label = "Stage C" }]
[stages.p]
"Won" = "won"
"Lost" = "lost"
[[files]]
path = "accounts.csv"
shape = "accounts"
columns = { id = "Id", name = "Name", created = "Created" }
[[files]]
path = "deals.csv"
shape = "opportunities"
stage_entered_pattern = "entered {stage}"
columns = { id = "Id", name = "Name", account = "Account", stage = "Stage", amount = "Amount", currency = "Currency", created = "Created", close_date = "Closed", owner = "Owner" }
"""
ACCOUNTS = "Id,Name,Created\nA1,Acme,2024-01-01T00:00:00Z\nA2,星辰,2024-01-01T00:00:00Z\n"
DEALS_HEADER = "Id,Name,Account,Stage,Amount,Currency,Created,Closed,Owner,entered a,entered b,entered c,entered won\n"


@pytest.fixture
def app() -> Iterator[CrmApplication]:
    application = CrmApplication(database_from_url("memory://"))
    yield application
    application.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[CrmApplication]:
    application = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))
    yield application
    application.close()


@pytest.fixture
def export(tmp_path: Path) -> Callable[..., Mapping]:
    """Write `files` (name → text) and the mapping (MAPPING unless given) into a folder; the loaded mapping."""
    def write(files: dict[str, str], mapping: str = MAPPING) -> Mapping:
        for name, text in files.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
        (tmp_path / "mapping.toml").write_text(mapping, encoding="utf-8")
        return load_mapping(tmp_path / "mapping.toml")
    return write


def deals(*rows: str) -> dict[str, str]:
    """The accounts file and a deals file of these rows (after DEALS_HEADER)."""
    return {"accounts.csv": ACCOUNTS, "deals.csv": DEALS_HEADER + "".join(row + "\n" for row in rows)}


def key(record_id: UUID) -> UUID:
    """A record's id without its home partition's bits: an imported deal's or ticket's id is its source id's
    UUID (`external_uuid`) placed in its account's partition, so tests compare keys (`domain.partitions`)."""
    return in_partition(0, record_id)


def logged_id(app: CrmApplication, kind: str, source: str, external_id: str) -> UUID:
    """The id the log holds for the imported `kind` record `source` calls `external_id`."""
    wanted = key(external_uuid(kind, source, external_id))
    return next(e.originator_id for _, e in app.read_log() if key(e.originator_id) == wanted)
