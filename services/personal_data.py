"""Crypto-shredding: personal fields are sealed (AES-GCM) with a key per data subject, kept in a key table
beside the log. Forgetting someone deletes their keys: every sealed value of theirs — in the log, in read
models that keep the seal, in Kafka replays from then on — reads as "(forgotten)".
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.customer import Customer
from domain.personal_data import PERSONAL_FIELDS
from projections.tables import Table
from services.readstore import ReadStore

FORGOTTEN = "(forgotten)"
PREFIX = "pii:v1:"
KEYS = Table("crm_personal_keys", (("subject_id", "TEXT"), ("secret", "TEXT")), ("subject_id",))
_PERSONAL_TOPICS = frozenset(get_topic(cls) for cls in PERSONAL_FIELDS)
_SEALED_MARK = re.compile(r"⟦(pii:v1:[0-9a-f-]{36}:[A-Za-z0-9_=-]+)⟧")


class PersonalText(str):
    """Readable personal text that remembers its sealed form, so a read model can keep the seal instead."""

    sealed: str

    def __new__(cls, plain: str, sealed: str) -> PersonalText:
        text = super().__new__(cls, plain)
        text.sealed = sealed
        return text

    def __getnewargs__(self) -> tuple[str, str]:  # so copies (e.g. from the aggregate cache) keep the seal
        return str(self), self.sealed


def mark(value: str) -> str:
    """What a read model should store for a value: the seal of personal text (see `KeyStore.unseal_marks`)."""
    return f"⟦{value.sealed}⟧" if isinstance(value, PersonalText) else value


class KeyStore:
    """Per-subject keys in a table of the log's database, cached for `ttl` seconds per process (the
    `max_cached` most recently loaded ones, so a rebuild over every person keeps memory flat)."""

    def __init__(self, store: ReadStore, ttl: float = 60.0, max_cached: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_cached = max_cached
        self._cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        with store.transaction() as cursor:
            for statement in KEYS.ddl():
                cursor.execute(statement)

    def ensure(self, subjects: Iterable[str]) -> None:
        """Make sure every subject has a key (one transaction for all that are missing)."""
        missing = sorted({s for s in subjects if self._cached(s) is None})
        if not missing:
            return
        with self.store.transaction() as cursor:
            cursor.executemany(f"INSERT INTO {KEYS.name} (subject_id, secret) VALUES (?, ?) "
                               "ON CONFLICT (subject_id) DO NOTHING",
                               [(s, base64.b64encode(AESGCM.generate_key(256)).decode()) for s in missing])
        self._load(missing)

    def preload(self, subjects: Iterable[str]) -> None:
        """Cache the keys of these subjects with a query per thousand, not one each (subjects without a key
        stay without: nothing is created)."""
        missing = sorted({s for s in subjects if self._cached(s) is None})
        for start in range(0, len(missing), 1000):
            self._load(missing[start:start + 1000])

    def key(self, subject: str) -> bytes | None:
        cached = self._cached(subject)
        if cached is None:
            self._load([subject])
            cached = self._cached(subject)
        return cached

    def destroy(self, subjects: Iterable[str]) -> None:
        """Forget these subjects for ever: their keys are deleted, here and in this process's cache."""
        doomed = list(subjects)
        with self.store.transaction() as cursor:
            cursor.executemany(f"DELETE FROM {KEYS.name} WHERE subject_id = ?", [(s,) for s in doomed])
        self.evict(doomed)

    def evict(self, subjects: Iterable[str]) -> None:
        with self._lock:
            for subject in subjects:
                self._cache.pop(subject, None)

    def seal(self, subject: str, plain: str) -> str:
        key = self._cached(subject)
        if key is None:  # a round trip only for a subject not cached
            self.ensure([subject])
            key = self.key(subject)
        assert key is not None, f"no key for {subject}"
        nonce = os.urandom(12)
        cipher = AESGCM(key).encrypt(nonce, plain.encode(), subject.encode())
        return f"{PREFIX}{subject}:{base64.urlsafe_b64encode(nonce + cipher).decode()}"

    def unseal(self, sealed: str) -> str:
        """The plain text, or "(forgotten)" once the subject's key is gone."""
        subject, _, payload = sealed.removeprefix(PREFIX).partition(":")
        key = self.key(subject)
        if key is None:
            return FORGOTTEN
        raw = base64.urlsafe_b64decode(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], subject.encode()).decode()
        except InvalidTag:
            return FORGOTTEN

    def unseal_marks(self, text: str) -> str:
        """Text a read model stored with `mark`, with each seal opened (or "(forgotten)")."""
        return _SEALED_MARK.sub(lambda match: self.unseal(match.group(1)), text)

    def _cached(self, subject: str) -> bytes | None:
        with self._lock:
            entry = self._cache.get(subject)
        return entry[0] if entry and time.monotonic() - entry[1] < self.ttl else None

    def _load(self, subjects: list[str]) -> None:
        placeholders = ", ".join("?" * len(subjects))
        rows = self.store.query(f"SELECT subject_id, secret FROM {KEYS.name} WHERE subject_id IN ({placeholders})",
                                subjects)
        now = time.monotonic()
        with self._lock:
            for subject, secret in rows:
                self._cache[subject] = (base64.b64decode(secret), now)
                self._cache.move_to_end(subject)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)


def subjects_of(events: Iterable[Any]) -> set[str]:
    """The data subjects whose personal fields these events carry."""
    return {str(e.originator_id) for e in events if type(e) in PERSONAL_FIELDS}


class PersonalDataMapper(Mapper):
    """Seals personal fields on the way into the log and opens them on the way out."""

    def __init__(self, keys: KeyStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys = keys

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = PERSONAL_FIELDS.get(type(domain_event), ())
        subject = str(domain_event.originator_id)
        sealed = {name: self.keys.seal(subject, getattr(domain_event, name)) for name in fields
                  if getattr(domain_event, name)}
        if not sealed:
            return super().to_stored_event(domain_event)
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", {**vars(domain_event), **sealed})
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
                plain = self.keys.unseal(value)
                object.__setattr__(event, name, FORGOTTEN if plain == FORGOTTEN else PersonalText(plain, value))
        return event
