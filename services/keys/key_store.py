"""Crypto-shredding: personal fields are sealed (AES-GCM) with a key per record (a customer, a lead, a deal,
a ticket), kept in a key table beside the log and bound to the person the record is about. Forgetting
someone deletes every key bound to them: every sealed value of theirs — in the log, in read models that
keep the seal, in exports and on Kafka (the relay publishes the seals, never the plain text) — reads as
"(forgotten)".

Why a key per record rather than one per person: a deal's later events do not name its customer, and
`crm import` encodes chunks of a file in parallel workers that cannot know it; the record's own id is
always at hand, and its creation event (`domain.personal_data.PERSON_FIELD`) binds its key to the person.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.personal_data import PREFIX, subject_of_seal
from projections.tables import Table
from services.storage.read_model_store import ReadModelStore

log = logging.getLogger(__name__)
FORGOTTEN = "(forgotten)"
KEYS = Table("crm_personal_keys", (("subject_id", "TEXT"), ("secret", "TEXT"), ("person_id", "TEXT")),
             ("subject_id",), indexes=(("person_id",),))
FORGETTINGS = Table("crm_personal_forgettings", (("name", "TEXT"), ("times", "BIGINT")), ("name",))
# A key made without its person gets it when the record's creation event comes by; a secret is never replaced.
_BIND_PERSON = (f"ON CONFLICT (subject_id) DO UPDATE SET person_id = excluded.person_id "
                f"WHERE {KEYS.name}.person_id IS NULL AND excluded.person_id IS NOT NULL")
_SEALED_MARK = re.compile(r"⟦(pii:v1:[0-9a-f-]{36}:[A-Za-z0-9_=-]+)⟧")


class KeyStore:
    """Per-record keys in a table of the log's database, each bound to the person the record is about,
    cached for `ttl` seconds per process (the `max_cached` most recently loaded ones, so a rebuild over
    every person keeps memory flat). The cache holds each key's AES-GCM object, made once per key: making
    one costs about as much as sealing a field.

    Forgetting counts itself in a one-row table; a process using its cache reads that count at most every
    `recheck` seconds and empties its cache when it moved, so another process's cached keys of a forgotten
    person open nothing after `recheck` seconds (one tiny query a second, rather than a key query per use)."""

    def __init__(self, store: ReadModelStore, ttl: float = 60.0, max_cached: int = 10_000, recheck: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self.max_cached = max_cached
        self.recheck = recheck
        self._cache: OrderedDict[str, tuple[bytes, AESGCM, float]] = OrderedDict()
        self._lock = threading.Lock()
        with store.transaction() as cursor:
            if not _set_up(cursor, store.kind):
                for statement in KEYS.ddl()[:1]:
                    cursor.execute(statement)
                _add_person_column(cursor, store.kind)
                for statement in [*KEYS.ddl()[1:], *FORGETTINGS.ddl()]:
                    cursor.execute(statement)
        self._forgettings, self._checked = self._forgettings_now(), time.monotonic()

    def ensure(self, subjects: Mapping[str, str | None] | Iterable[str]) -> None:
        """Make sure every subject has a key (one transaction for all that are missing), bound to the person
        `subjects` maps it to (None: the record is about itself, or the person is not known here). A key
        made without its person gets it when the record's creation event comes by (an import's chunks are
        encoded in any order)."""
        people = subjects if isinstance(subjects, Mapping) else dict.fromkeys(subjects)
        missing = sorted(s for s in people if self._cached(s) is None)
        if not missing:
            return
        rows = [(s, base64.b64encode(AESGCM.generate_key(256)).decode(), people[s]) for s in missing]
        with self.store.transaction() as cursor:
            if self.store.kind == "postgresql":  # one statement for all: executemany sent one INSERT each
                cursor.execute(f"INSERT INTO {KEYS.name} (subject_id, secret, person_id) "  # (≈ 40 µs a key)
                               f"SELECT * FROM unnest(?::text[], ?::text[], ?::text[]) {_BIND_PERSON}",
                               [list(column) for column in zip(*rows)])
            else:
                cursor.executemany(f"INSERT INTO {KEYS.name} (subject_id, secret, person_id) VALUES (?, ?, ?) "
                                   + _BIND_PERSON, rows)
        self._load(missing)

    def secrets(self, subjects: Iterable[str]) -> dict[str, bytes]:
        """The keys the table holds for these subjects (a query per thousand; not cached)."""
        wanted = list(subjects)
        return {subject: base64.b64decode(secret) for start in range(0, len(wanted), 1000)
                for subject, secret in self._rows(wanted[start:start + 1000])}

    def preload(self, subjects: Iterable[str]) -> None:
        """Cache the keys of these subjects with a query per thousand, not one each (subjects without a key
        stay without: nothing is created)."""
        missing = sorted({s for s in subjects if self._cached(s) is None})
        for start in range(0, len(missing), 1000):
            self._load(missing[start:start + 1000])

    def key(self, subject: str) -> bytes | None:
        cached = self._entry(subject)
        return cached[0] if cached else None

    def destroy(self, subjects: Iterable[str]) -> list[str]:
        """Forget these people for ever: the keys of these records and of every record bound to them are
        deleted, here and in this process's cache. Returns the records whose keys were deleted."""
        people = list(subjects)
        marks = ", ".join("?" * len(people))
        with self.store.transaction() as cursor:
            if self.store.kind == "postgresql":  # waits for an import placing keys (derived_keys.HOLD_KEYS),
                cursor.execute(f"LOCK TABLE {KEYS.name} IN ROW EXCLUSIVE MODE")  # so the next statement sees them
            cursor.execute(f"SELECT subject_id FROM {KEYS.name} WHERE subject_id IN ({marks}) "
                           f"OR person_id IN ({marks})", [*people, *people])
            doomed = sorted({subject for (subject,) in cursor.fetchall()} | set(people))
            cursor.executemany(f"DELETE FROM {KEYS.name} WHERE subject_id = ?", [(s,) for s in doomed])
            cursor.execute(f"INSERT INTO {FORGETTINGS.name} (name, times) VALUES ('keys', 1) ON CONFLICT (name) "
                           f"DO UPDATE SET times = {FORGETTINGS.name}.times + 1")  # tells other processes' caches
        self.evict(doomed)
        return doomed

    def evict(self, subjects: Iterable[str]) -> None:
        with self._lock:
            for subject in subjects:
                self._cache.pop(subject, None)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def seal(self, subject: str, plain: str) -> str:
        return self.seal_all(subject, [plain])[0]

    def seal_all(self, subject: str, plains: Sequence[str]) -> list[str]:
        """Each text sealed with the subject's key, under its own nonce. One event's fields are sealed in
        one call: one key look-up and one read of random bytes for all of them."""
        aead = self._cached(subject)
        if aead is None:  # a round trip only for a subject not cached
            self.ensure([subject])
            aead = self._cached(subject)
        assert aead is not None, f"no key for {subject}"
        return sealed_with(aead, subject, plains)

    def unseal(self, sealed: str) -> str:
        """The plain text, or "(forgotten)" once the subject's key is gone."""
        subject, _, payload = sealed.removeprefix(PREFIX).partition(":")
        entry = self._entry(subject)
        if entry is None:
            return FORGOTTEN
        raw = base64.urlsafe_b64decode(payload)
        try:
            return entry[1].decrypt(raw[:12], raw[12:], subject.encode()).decode()
        except InvalidTag:
            return FORGOTTEN

    def unseal_marks(self, text: str) -> str:
        """Text a read model stored with `mark`, with each seal opened (or "(forgotten)")."""
        return _SEALED_MARK.sub(lambda match: self.unseal(match.group(1)), text)

    def unseal_all_marks(self, texts: list[str]) -> list[str]:
        """`unseal_marks` of many texts, their keys loaded together first (a query per thousand)."""
        self.preload(subject_of_seal(m) for text in texts for m in _SEALED_MARK.findall(text))
        return [self.unseal_marks(text) for text in texts]

    def _entry(self, subject: str) -> tuple[bytes, AESGCM, float] | None:
        entry = self._fresh(subject)
        if entry is None:
            self._load([subject])
            entry = self._fresh(subject)
        return entry

    def _fresh(self, subject: str) -> tuple[bytes, AESGCM, float] | None:
        now = time.monotonic()
        if now - self._checked >= self.recheck:
            self._drop_cache_if_someone_was_forgotten(now)
        with self._lock:
            entry = self._cache.get(subject)
        return entry if entry and now - entry[2] < self.ttl else None

    def _drop_cache_if_someone_was_forgotten(self, now: float) -> None:
        self._checked = now
        count = self._forgettings_now()
        if count != self._forgettings:
            log.info("someone was forgotten since this process cached keys: emptying the key cache")
            self.clear_cache()
            self._forgettings = count

    def _forgettings_now(self) -> int:
        rows = self.store.query(f"SELECT times FROM {FORGETTINGS.name} WHERE name = 'keys'")
        return int(rows[0][0]) if rows else 0

    def _cached(self, subject: str) -> AESGCM | None:
        entry = self._fresh(subject)
        return entry[1] if entry else None

    def _load(self, subjects: list[str]) -> None:
        rows = self._rows(subjects)
        now = time.monotonic()
        with self._lock:
            for subject, secret in rows:
                key = base64.b64decode(secret)
                self._cache[subject] = (key, AESGCM(key), now)
                self._cache.move_to_end(subject)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)

    def _rows(self, subjects: list[str]) -> list[tuple[str, str]]:
        """(subject, secret) of the subjects the table has a key for."""
        if self.store.kind == "postgresql":  # one parameter: a thousand placeholders cost ≈ 5 ms to parse
            return self.store.query(f"SELECT subject_id, secret FROM {KEYS.name} WHERE subject_id = ANY(?)",
                                    [subjects])  # type: ignore[return-value]
        placeholders = ", ".join("?" * len(subjects))
        return self.store.query(f"SELECT subject_id, secret FROM {KEYS.name} WHERE subject_id IN ({placeholders})",
                                subjects)  # type: ignore[return-value]


_URLSAFE = bytes.maketrans(b"+/", b"-_")  # what base64.urlsafe_b64encode translates, without its two calls


def sealed_with(aead: AESGCM, subject: str, plains: Sequence[str], nonces: bytes | None = None) -> list[str]:
    """Each text sealed with `aead` (the subject's key), under its own nonce: 12 random bytes each, read at
    once for all (or taken from `nonces`, random bytes read ahead: a read costs ≈ 0.6 µs, a third of a seal)."""
    nonces, aad, prefix = nonces or os.urandom(12 * len(plains)), subject.encode(), f"{PREFIX}{subject}:"
    encrypt, text = aead.encrypt, binascii.b2a_base64
    sealed = []
    for i, plain in enumerate(plains):
        nonce = nonces[12 * i:12 * i + 12]
        sealed.append(prefix + text(nonce + encrypt(nonce, plain.encode(), aad), newline=False).translate(_URLSAFE)
                      .decode())
    return sealed


def _set_up(cursor: Any, kind: str) -> bool:
    """Whether the key tables, their person column and index are all there (PostgreSQL), so that a process
    starting needs no DDL: `CREATE INDEX IF NOT EXISTS` takes a SHARE lock on the table even when the index
    exists, and an import worker starting while its import holds the key table (derived_keys.HOLD_KEYS)
    waited on it for ever."""
    if kind != "postgresql":
        return False
    relations = [KEYS.name, FORGETTINGS.name, *KEYS.index_names()]
    cursor.execute(f"SELECT {' AND '.join(['to_regclass(?) IS NOT NULL'] * len(relations))} AND EXISTS (SELECT 1 "
                   "FROM information_schema.columns WHERE table_name = ? AND column_name = 'person_id' AND "
                   "table_schema = current_schema())", [*relations, KEYS.name])
    return bool(cursor.fetchone()[0])


def _add_person_column(cursor: Any, kind: str) -> None:
    """Key tables made before keys were bound to people get the column (once; ALTER only when missing,
    so a role that may not alter the table is not asked to)."""
    if kind == "postgresql":
        cursor.execute("SELECT 1 FROM information_schema.columns WHERE table_name = ? AND column_name = ? "
                       "AND table_schema = current_schema()", [KEYS.name, "person_id"])
    else:
        cursor.execute(f"SELECT 1 FROM pragma_table_info('{KEYS.name}') WHERE name = ?", ["person_id"])
    if not cursor.fetchall():
        cursor.execute(f"ALTER TABLE {KEYS.name} ADD COLUMN person_id TEXT")
