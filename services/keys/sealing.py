"""Sealing on the way into the log and opening on the way out: the event mapper that encrypts each personal
field (`domain.personal_data.PERSONAL_FIELDS`) with its record's key from `services.keys.key_store`, and
which records (and people) a batch of events, aggregates or history lines needs keys for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.customer import Customer
from domain.personal_data import PERSON_ATTRIBUTE, PERSON_FIELD, PERSONAL_FIELDS, PREFIX, PersonalText
from services.keys.key_store import KeyStore

_PERSONAL_TOPICS = frozenset(get_topic(cls) for cls in PERSONAL_FIELDS)


def person_of_event(event: Any) -> str | None:
    """The person a creation event binds its record to, when that is not the record itself."""
    field = PERSON_FIELD.get(type(event))
    return str(getattr(event, field)) if field else None


def subjects_of(events: Iterable[Any]) -> dict[str, str | None]:
    """The records whose personal fields these events carry, each with the person it is about if known."""
    return {str(e.originator_id): person_of_event(e) for e in events if type(e) in PERSONAL_FIELDS}


def subjects_of_aggregates(aggregates: Iterable[Any]) -> dict[str, str | None]:
    """`subjects_of` the aggregates' pending events, the person taken from the aggregate itself (a deal's
    later events do not name its customer; the deal does)."""
    subjects: dict[str, str | None] = {}
    for aggregate in aggregates:
        if any(type(e) in PERSONAL_FIELDS for e in aggregate.pending_events):
            attribute = PERSON_ATTRIBUTE.get(type(aggregate))
            subjects[str(aggregate.id)] = str(getattr(aggregate, attribute)) if attribute else None
    return subjects


def subjects_of_lines(lines: Iterable[Any]) -> dict[str, str | None]:
    """`subjects_of` checked history lines (`services.history.event_lines.HistoryLine`)."""
    subjects: dict[str, str | None] = {}
    for line in lines:
        if line.schema.cls in PERSONAL_FIELDS:
            field = PERSON_FIELD.get(line.schema.cls)
            person = str(UUID(line.data[field])) if field else None
            if person or line.subject not in subjects:
                subjects[line.subject] = person
    return subjects


class PersonalDataMapper(Mapper):
    """Seals personal fields on the way into the log and opens them on the way out."""

    def __init__(self, keys: KeyStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys = keys

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = PERSONAL_FIELDS.get(type(domain_event), ())
        names = [name for name in fields if getattr(domain_event, name)]
        if not names:
            return super().to_stored_event(domain_event)
        sealed = self.keys.seal_all(str(domain_event.originator_id), [getattr(domain_event, n) for n in names])
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", {**vars(domain_event), **dict(zip(names, sealed))})
        return super().to_stored_event(copy)

    def to_domain_events(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        """Many stored events at once: the keys of their data subjects are loaded together first."""
        self.keys.preload(str(e.originator_id) for e in stored_events if e.topic in _PERSONAL_TOPICS)
        return [self.to_domain_event(e) for e in stored_events]

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if isinstance(event, Customer.Forgotten):
            self.keys.evict([str(event.originator_id)])
        for name in PERSONAL_FIELDS.get(type(event), ()):
            value = getattr(event, name)
            if isinstance(value, str) and value.startswith(PREFIX):
                object.__setattr__(event, name, PersonalText(self.keys.unseal(value), value))
        return event

    def to_sealed_events(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        """`to_sealed_event` of each: for read models, which store the seals and open them at query time
        (`mark`); no key is read, so a rebuild does no decryption at all."""
        return [Mapper.to_domain_event(self, e) for e in stored_events]

    def to_sealed_event(self, stored_event: StoredEvent) -> Any:
        """The domain event with its personal fields left sealed (`pii:v1:…` text): for copies that leave
        the log (Kafka), which must go blind when the person is forgotten."""
        return super().to_domain_event(stored_event)
