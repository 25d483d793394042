"""What a worker hands the importing process: a chunk's Facts come back from `marshal` exactly as they were
made (values and their types), for every event type, so the in-order rules see what they saw with pickle."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import pytest

from services.application import CrmApplication
from services.history import import_workers, native_encoder
from services.history.event_lines import SCHEMAS
from services.history.import_workers import checked_chunk, packed, unpacked
from services.settings import database_from_url
from tests.unit.services.history.test_line_decoder import LINES  # export's own line of every event type


def _typed(value: object) -> object:
    """`value` with the type of every part spelt out (1 and True, a tuple and a list compare equal)."""
    if isinstance(value, (tuple, list)):
        return type(value).__name__, [_typed(inner) for inner in value]
    return type(value).__name__, value


def test_the_facts_of_every_event_type_come_back_from_marshal_as_they_went_and_as_pickle_gives_them() -> None:
    found, problem = checked_chunk(LINES)
    assert problem is None
    assert {facts[0] for facts in found} == set(SCHEMAS)  # every event type of the catalogue
    back = unpacked(packed(found))
    assert _typed(back) == _typed(found) == _typed(pickle.loads(pickle.dumps(found)))


def test_without_the_extension_the_python_path_runs_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """CRM_IMPORT_NATIVE=0 (or crm_native not built): no compiled encoder, and `worker_path` says "python"
    (the benchmark's `details.worker_path`)."""
    app = CrmApplication(database_from_url("memory://"))
    monkeypatch.setenv(native_encoder.OFF, "0")
    assert import_workers.worker_path() == "python"
    assert native_encoder.native_encoder(app.mapper, datetime.now(timezone.utc), b"s" * 32) is None
    monkeypatch.setattr(native_encoder, "crm_native", None)
    monkeypatch.delenv(native_encoder.OFF)
    assert import_workers.worker_path() == "python"
