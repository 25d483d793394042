"""The keys of the records one `crm import` creates, made in batches and written in the import's own
transaction, so that a refused (or crashed) import leaves no key behind.

The import's worker processes seal chunks of the file at the same time, and one record's events are spread
over many chunks: two workers must seal with the same key without asking each other or the database. So a
record the key table does not know gets HMAC-SHA256(import secret, record id) as its key: the import secret
is 32 random bytes made when the import starts, handed to its workers and never stored, so once the import
ends the keys are as unrelated to each other as `AESGCM.generate_key`'s (HMAC-SHA256 is a PRF: a key
tells nothing of the secret or of the other keys), and deleting one still makes its seals unreadable.

Each worker answers a chunk's new keys as rows of the key table (subject, secret, person); the importing
process copies them into a temporary table in its transaction and moves them into the key table once, at the
end (`KEYS_FROM_STAGING`), deduplicated: a record seen in several chunks comes several times, with the same
key, and with its person wherever its creation line was.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.keys.key_store import KEYS, KeyStore, sealed_with

KeyRow = tuple[str, str, "str | None"]  # subject_id, secret (base64), person_id: a row of the key table
STAGING = "crm_import_keys"
STAGING_DDL = f"CREATE TEMPORARY TABLE {STAGING} (subject_id TEXT, secret TEXT, person_id TEXT) ON COMMIT DROP"
# Held by the import, with the log's lock, until it commits: a forgetting (KeyStore.destroy, ROW EXCLUSIVE)
# waits for it and then deletes the keys the import placed for the person too — without it a customer
# forgotten during an import kept a readable record (review of issue 14, P1).
HOLD_KEYS = f"LOCK TABLE {KEYS.name} IN SHARE ROW EXCLUSIVE MODE"
# The staged keys, one per record (its person where any row names it), into the key table. A record whose key
# the table held already (left by an import that stopped part-way, say) comes with that key and, when its
# creation line names one, its person: the person is bound if the key had none (as KeyStore.ensure's
# _BIND_PERSON does), else forgetting that person would miss the key (review of issue 14, P3). A key another
# writer placed for a record with a different secret than the staged one is kept, and the count tells: the
# import's seals would not open, so the import must fail (`unplaced` > 0). The statement's snapshot is taken
# under HOLD_KEYS, so no key can appear between the count and the insert.
KEYS_FROM_STAGING = (
    f"WITH staged AS (SELECT DISTINCT ON (subject_id) subject_id, secret, person_id FROM {STAGING} "
    f"ORDER BY subject_id, person_id NULLS LAST), "
    f"clashing AS (SELECT COUNT(*) AS unplaced FROM staged JOIN {KEYS.name} held USING (subject_id) "
    f"WHERE held.secret <> staged.secret), "
    f"placed AS (INSERT INTO {KEYS.name} (subject_id, secret, person_id) SELECT * FROM staged "
    f"ON CONFLICT (subject_id) DO UPDATE SET person_id = excluded.person_id "
    f"WHERE {KEYS.name}.person_id IS NULL AND excluded.person_id IS NOT NULL "
    f"AND {KEYS.name}.secret = excluded.secret RETURNING 1) "
    f"SELECT unplaced FROM clashing")
# The staged keys when the key table held none as the import locked it (`ANY_KEY` under HOLD_KEYS, so it holds none
# until the commit): no key can clash nor wait for its person, so a plain INSERT of one row per record (its person
# where any row names it, as in KEYS_FROM_STAGING), sorted bytewise (COLLATE "C": the same groups, text equality
# is bytewise; the database's C.UTF-8 sorts through strcoll): ≈ 8 → 5.5 µs of the server a key, ≈ 0.4 an event.
KEYS_INTO_EMPTY = (f"INSERT INTO {KEYS.name} (subject_id, secret, person_id) "
                   f"SELECT DISTINCT ON (subject_id COLLATE \"C\") subject_id, secret, person_id FROM {STAGING} "
                   f"ORDER BY subject_id COLLATE \"C\", person_id NULLS LAST")
# Whether the key table holds any key at all, asked under HOLD_KEYS: no key can appear until the import commits,
# so if it holds none, no record of the file has one and the workers need not ask for each chunk's (one query per
# 1,000 records: ≈ 1 µs a line, 4 % of a worker's CPU, importing into a new installation).
ANY_KEY = f"SELECT EXISTS (SELECT 1 FROM {KEYS.name}) AS held"


NONCES_READ_AHEAD = 12 * 4096


def import_secret() -> bytes:
    return os.urandom(32)


_IPAD, _OPAD = bytes(b ^ 0x36 for b in range(256)), bytes(b ^ 0x5C for b in range(256))  # XOR as translations


class RecordKeys:
    """HMAC-SHA256(secret, record id), with the secret's two padded blocks hashed once (RFC 2104: HMAC(K, m) =
    H(K ⊕ opad ‖ H(K ⊕ ipad ‖ m))): a record's key then costs two copies of a hash state and two short hashes,
    0.72 µs instead of `hmac.digest`'s 1.64 (which sets OpenSSL's HMAC up anew each call), the same bytes
    (`tests/unit/services/keys/test_derived_keys.py`). An import derives one per record of the file."""

    BLOCK = 64  # SHA-256's block size

    def __init__(self, secret: bytes) -> None:
        if len(secret) > self.BLOCK:  # as HMAC does with a long key
            secret = hashlib.sha256(secret).digest()
        padded = secret.ljust(self.BLOCK, b"\0")
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))

    def __call__(self, record: str) -> bytes:
        inner, outer = self._inner.copy(), self._outer.copy()
        inner.update(record.encode())
        outer.update(inner.digest())
        return outer.digest()


class DerivedKeys:
    """A process's view of one import's keys: the key table's where it has one, else derived; a chunk's
    keys held here while it is sealed (`seal_all`: a dict look-up, not the shared cache's clock and lock)."""

    def __init__(self, keys: KeyStore, secret: bytes) -> None:
        self.keys, self._key_of = keys, RecordKeys(secret)
        self._chunk: dict[str, AESGCM] = {}
        self._nonces, self._used = b"", 0  # random bytes read ahead for the seals' nonces, and how many are used

    def prepare(self, subjects: Mapping[str, str | None], look_up: bool = True) -> list[KeyRow]:
        """A key for every subject (one query for those the table holds, unless not `look_up`: the import found
        the table empty under its lock, `ANY_KEY`) and the rows to write in the import's transaction: the keys
        it lacks, and the held ones whose person this chunk names (to bind it)."""
        known = self.keys.secrets(subjects) if look_up else {}
        key_of = self._key_of
        secrets = {s: key_of(s) for s in subjects if s not in known}
        self._chunk = {s: AESGCM(key) for s, key in {**known, **secrets}.items()}
        to_bind = {s: known[s] for s in known if subjects[s] is not None}  # its person, if the key has none yet
        return [(s, base64.b64encode(secret).decode(), subjects[s]) for s, secret in {**secrets, **to_bind}.items()]

    def seal_all(self, subject: str, plains: Sequence[str]) -> list[str]:
        """`KeyStore.seal_all` with the key `prepare` gave the subject."""
        return sealed_with(self._chunk[subject], subject, plains, self._fresh_nonces(len(plains)))

    def _fresh_nonces(self, count: int) -> bytes:
        """`count` nonces, never handed out before: from random bytes read 4,096 nonces at a time (each seal
        reading its own cost ≈ 0.6 µs, as much as the encryption of a field)."""
        size = 12 * count
        if self._used + size > len(self._nonces):
            self._nonces, self._used = os.urandom(max(NONCES_READ_AHEAD, size)), 0
        self._used += size
        return self._nonces[self._used - size:self._used]

    def forget(self) -> None:
        """The chunk's keys dropped once it is sealed (they would grow with every person of the file)."""
        self._chunk = {}
