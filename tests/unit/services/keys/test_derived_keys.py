"""An import's keys: every process of one import gets the same key for a record without asking the others,
records the key table knows keep theirs, and another import's keys are unrelated."""

from __future__ import annotations

import base64
import hmac
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.keys.derived_keys import DerivedKeys, RecordKeys, import_secret
from services.keys.key_store import KeyStore
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore


def _keys(path: Path) -> KeyStore:
    return KeyStore(ReadModelStore(database_from_url(f"sqlite:///{path}")))


def test_two_processes_of_one_import_seal_a_record_with_the_same_key_which_its_row_holds(tmp_path: Path) -> None:
    secret, record, person = import_secret(), str(uuid4()), str(uuid4())
    one, other = DerivedKeys(_keys(tmp_path / "a.db"), secret), DerivedKeys(_keys(tmp_path / "b.db"), secret)

    rows = one.prepare({record: person})
    assert other.prepare({record: None}) == [(record, rows[0][1], None)]

    assert rows == [(record, rows[0][1], person)]
    sealed = one.seal_all(record, ["王小明", "13912345678"])
    one.keys.store.query("INSERT INTO crm_personal_keys (subject_id, secret, person_id) VALUES (?, ?, ?)", rows[0])
    assert [one.keys.unseal(text) for text in sealed] == ["王小明", "13912345678"]
    assert other.seal_all(record, ["王小明"]) != sealed[:1]  # a nonce of its own


def test_a_record_the_key_table_knows_keeps_its_key_and_needs_no_row(tmp_path: Path) -> None:
    keys, record = _keys(tmp_path / "crm.db"), str(uuid4())
    keys.ensure([record])
    derived = DerivedKeys(keys, import_secret())

    assert derived.prepare({record: None}) == []
    assert keys.unseal(derived.seal_all(record, ["王小明"])[0]) == "王小明"


def test_without_look_up_the_key_table_is_not_asked_and_the_keys_are_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import that found the key table empty under its lock (`ANY_KEY`) asks it nothing per chunk: the
    keys and rows are those a look-up finding nothing gives."""
    secret, record, person = import_secret(), str(uuid4()), str(uuid4())
    asked = DerivedKeys(_keys(tmp_path / "a.db"), secret).prepare({record: person})
    blind = DerivedKeys(_keys(tmp_path / "b.db"), secret)
    monkeypatch.setattr(blind.keys, "secrets", lambda subjects: pytest.fail("the key table was asked"))

    assert blind.prepare({record: person}, look_up=False) == asked


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=100), st.text(max_size=40))
def test_record_keys_are_hmac_sha256_of_the_record_id(secret: bytes, record: str) -> None:
    """The precomputed HMAC gives exactly `hmac.digest`'s bytes: keys of earlier imports stay what they were."""
    assert RecordKeys(secret)(record) == hmac.digest(secret, record.encode(), "sha256")


def test_another_import_derives_other_keys_and_a_forgotten_chunk_seals_nothing(tmp_path: Path) -> None:
    record = str(uuid4())
    first, second = DerivedKeys(_keys(tmp_path / "a.db"), import_secret()), DerivedKeys(_keys(tmp_path / "b.db"),
                                                                                       import_secret())

    assert first.prepare({record: None})[0][1] != second.prepare({record: None})[0][1]
    first.forget()
    with pytest.raises(KeyError):
        first.seal_all(record, ["王小明"])
    assert first.keys.secrets([record]) == {}  # not in the table: only the import's transaction writes it


def test_nonces_read_ahead_are_never_handed_out_twice_and_the_seals_open(tmp_path: Path) -> None:
    """Seals take their nonces from random bytes read ahead (4,096 nonces a read): across reads, and for seals
    of one field or of several, no nonce comes twice (AES-GCM's one rule), and every seal opens."""
    keys, record = _keys(tmp_path / "crm.db"), str(uuid4())
    derived = DerivedKeys(keys, import_secret())
    rows = derived.prepare({record: None})
    keys.store.query("INSERT INTO crm_personal_keys (subject_id, secret, person_id) VALUES (?, ?, ?)", rows[0])

    sealed = [text for n in range(3000) for text in derived.seal_all(record, ["王小明", "13912345678"][:1 + n % 2])]

    nonces = [base64.urlsafe_b64decode(text.rsplit(":", 1)[1])[:12] for text in sealed]
    assert len(sealed) == 4500 and len(set(nonces)) == len(nonces)
    assert {keys.unseal(text) for text in sealed} == {"王小明", "13912345678"}


def test_a_held_key_comes_back_as_a_row_with_the_person_its_creation_names_so_the_import_binds_it(
        tmp_path: Path) -> None:
    keys, record, person = _keys(tmp_path / "crm.db"), str(uuid4()), str(uuid4())
    keys.ensure([record])  # held, bound to nobody
    held = base64.b64encode(keys.secrets([record])[record]).decode()

    assert DerivedKeys(keys, import_secret()).prepare({record: person}) == [(record, held, person)]
