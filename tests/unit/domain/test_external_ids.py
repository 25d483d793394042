"""External ids: the same source id gives the same CRM id; sources and kinds never collide."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.external_ids import external_uuid


def test_the_same_record_always_gets_the_same_id() -> None:
    assert external_uuid("deal", "salesforce", "006Dn00000AbCdE") == external_uuid("deal", "salesforce",
                                                                                   "006Dn00000AbCdE")


def test_sources_kinds_and_case_keep_ids_apart() -> None:
    ids = {external_uuid("deal", "salesforce", "1001"), external_uuid("deal", "hubspot", "1001"),
           external_uuid("ticket", "salesforce", "1001"), external_uuid("deal", "salesforce", "006dn00000abcde"),
           external_uuid("deal", "salesforce", "006Dn00000AbCdE")}
    assert len(ids) == 5


@pytest.mark.parametrize("kind, source, external_id", [
    ("opportunity", "salesforce", "1"), ("deal", "Sales Force", "1"), ("deal", "salesforce", "  "),
    ("deal", "salesforce", "x" * 201), ("deal", "salesforce", "a\x00b"),
])
def test_bad_parts_are_refused_with_a_reason(kind: str, source: str, external_id: str) -> None:
    with pytest.raises(DomainError):
        external_uuid(kind, source, external_id)
