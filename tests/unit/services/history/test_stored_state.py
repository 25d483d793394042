"""The import's stored states are what the application's mapper writes, without building domain events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from domain.personal_data import PERSONAL_FIELDS
from services.event_envelope import event_type
from services.application import CrmApplication
from services.history.exporter import history_line
from services.history.event_lines import SCHEMAS, parse_event, read_line
from services.settings import database_from_url
from services.history.stored_state import StateEncoders, iso_time, uuid_hex
from tests.support.history_of_every_event import record_every_event

RECORDED = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture
def crm() -> Iterator[CrmApplication]:
    app = CrmApplication(database_from_url("memory://"))
    record_every_event(app)
    yield app
    app.close()


@pytest.fixture
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seals made with one nonce, so a sealed state can be compared byte for byte."""
    monkeypatch.setattr("services.keys.key_store.os.urandom", lambda size: bytes(size))


def _lines(crm: CrmApplication) -> list[bytes]:
    return [history_line(event) for _, event in crm.read_log()]


def _both(crm: CrmApplication, line: bytes) -> tuple[StoredEvent, StoredEvent]:
    """The stored event the import writes for `line`, and the one the mapper writes for its domain event."""
    checked = read_line(line)
    topic, state = StateEncoders(crm.mapper, crm.keys.seal_all, RECORDED).stored(checked)
    mapped = crm.mapper.to_stored_event(parse_event(line, RECORDED))
    return StoredEvent(UUID(checked.subject), checked.version, topic, state), mapped


def _decoded(crm: CrmApplication, stored: StoredEvent) -> list[tuple[str, Any]]:
    return list(vars(crm.mapper.to_domain_event(stored)).items())  # in order: the state's keys keep theirs


def test_the_history_holds_every_event_type_of_the_catalogue(crm) -> None:
    assert {event_type(event) for _, event in crm.read_log()} == set(SCHEMAS)


def test_events_without_personal_data_get_the_mappers_very_bytes(crm) -> None:
    lines = [line for line in _lines(crm) if read_line(line).schema.cls not in PERSONAL_FIELDS]

    for line in lines:
        imported, mapped = _both(crm, line)
        assert (imported.topic, imported.state) == (mapped.topic, mapped.state), line


def test_personal_fields_are_sealed_with_the_subjects_key_and_read_back_as_the_mapper_reads_them(crm) -> None:
    lines = [line for line in _lines(crm) if read_line(line).schema.cls in PERSONAL_FIELDS]

    for line in lines:
        imported, mapped = _both(crm, line)
        assert imported.topic == mapped.topic
        assert _decoded(crm, imported) == _decoded(crm, mapped), line
    captured, _ = _both(crm, next(line for line in lines if b"Lead.Captured" in line))
    assert "王芳".encode() not in captured.state and f"pii:v1:{captured.originator_id}:".encode() in captured.state


def test_sealed_states_are_the_mappers_very_bytes_given_the_same_nonce(crm, fixed_nonce) -> None:
    lines = [line for line in _lines(crm) if read_line(line).schema.cls in PERSONAL_FIELDS]

    for line in lines:
        imported, mapped = _both(crm, line)
        assert (imported.topic, imported.state) == (mapped.topic, mapped.state), line


@pytest.mark.parametrize("text", ["2026-03-01T09:00:00Z", "2026-03-01T09:00:00.250000Z", "2026-03-01T09:00:00.000000Z",
                                  "2026-03-01T09:00:00.25Z", "2026-03-01T17:00:00+08:00", "2026-03-01 09:00:00Z",
                                  "2026-W09-7T09:00:00Z", "2026-03-01T09:00:00,5Z"])
def test_a_time_in_any_accepted_form_is_written_as_its_transcoding_writes_it(text) -> None:
    assert iso_time(text) == datetime.fromisoformat(text).isoformat()


@pytest.mark.parametrize("text", ["dc8d6ad3-f1c0-55e1-985a-c5531be4c71e", "DC8D6AD3-F1C0-55E1-985A-C5531BE4C71E",
                                  "{dc8d6ad3-f1c0-55e1-985a-c5531be4c71e}", "dc8d6ad3f1c055e1985ac5531be4c71e",
                                  "urn:uuid:dc8d6ad3-f1c0-55e1-985a-c5531be4c71e"])
def test_an_id_in_any_accepted_form_is_written_as_its_transcoding_writes_it(text) -> None:
    assert uuid_hex(text) == UUID(text).hex


def test_a_line_written_by_hand_in_other_accepted_forms_gets_the_mappers_bytes(crm, fixed_nonce) -> None:
    opened = next(line for line in _lines(crm) if b'"crm.Deal.Opened"' in line)
    record = orjson.loads(opened)
    record["subject"] = record["subject"].upper()
    data = record["data"]
    data.update(occurred_at="2026-03-05T17:00:00.000000+08:00", customer_id=f"{{{data['customer_id']}}}",
                amount="8.00E+4", lead_id=None)

    imported, mapped = _both(crm, orjson.dumps(record))

    assert imported.state == mapped.state and imported.originator_id == mapped.originator_id
