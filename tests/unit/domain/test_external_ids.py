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


# --- the external id a creation event keeps, and the records that carry it ----------------------------------

from datetime import datetime, timezone  # noqa: E402
from uuid import UUID, uuid4  # noqa: E402

from domain.base import Meta  # noqa: E402
from domain.campaign import Campaign  # noqa: E402
from domain.customer import Customer  # noqa: E402
from domain.deal import Deal  # noqa: E402
from domain.external_ids import bare_id, check_qualified, imported_id, qualified, record_id  # noqa: E402
from domain.partitions import in_partition, partition_of  # noqa: E402
from domain.lead import Lead  # noqa: E402
from domain.pipeline import DEFAULT_PIPELINES, Pipeline  # noqa: E402
from domain.ticket import Ticket  # noqa: E402

META = Meta(occurred_at=datetime(2026, 3, 1, 9, tzinfo=timezone.utc), actor="李娜")


def test_the_kept_form_is_source_colon_id_and_the_bare_id_may_hold_colons() -> None:
    assert qualified("salesforce", " 006Dn00000AbCdE ") == "salesforce:006Dn00000AbCdE"
    assert check_qualified("jira:CRM:42", "ticket") == "jira:CRM:42" and bare_id("jira:CRM:42") == "CRM:42"
    assert check_qualified("", "deal") == ""


@pytest.mark.parametrize(("external_id", "kind", "reason"), [
    ("006Dn00000AbCdE", "deal", 'must be "<source>:<id>"'),
    ("salesforce:", "deal", "must not be empty"),
    ("Salesforce:1", "deal", "lower-case"),
    ("salesforce: 1", "deal", "spaces"),
    ("hubspot:wf@example.cn", "customer", "e-mail address"),
    ("hubspot:wf@example.cn", "lead", "e-mail address"),
    ("hubspot:+86 138 0013 8000", "customer", "phone number"),
    ("hubspot:138-0013-8000", "lead", "phone number"),
    ("hubspot:(010) 6552 9988", "customer", "phone number"),
])
def test_a_bad_kept_external_id_is_refused_with_a_reason(external_id: str, kind: str, reason: str) -> None:
    with pytest.raises(DomainError, match=reason):
        check_qualified(external_id, kind)


@pytest.mark.parametrize(("external_id", "kind"), [
    ("hubspot:51234567890", "customer"),  # a record number of digits only is an id, not a phone number
    ("salesforce:001Dn00000A1bCdEAF", "customer"),
    ("zendesk:+86 138 0013 8000", "ticket"),  # only records of people are checked
])
def test_a_person_s_numeric_id_and_other_kinds_ids_are_accepted(external_id: str, kind: str) -> None:
    assert check_qualified(external_id, kind) == external_id


def test_a_records_id_derives_from_its_external_id_and_a_different_chosen_one_is_refused() -> None:
    derived = external_uuid("deal", "salesforce", "006")
    assert record_id("deal", "salesforce:006") == derived == record_id("deal", "salesforce:006", derived)
    chosen = uuid4()
    assert record_id("deal", "", chosen) == chosen and isinstance(record_id("deal", ""), UUID)
    with pytest.raises(DomainError, match=f"is not the id of deal salesforce:006 \\({derived}\\)"):
        record_id("deal", "salesforce:006", chosen)


def _sales() -> Pipeline:
    name, stages = DEFAULT_PIPELINES["sales"]
    return Pipeline.define("sales", name, stages, META)


CUSTOMER = in_partition(37)
CREATIONS = {
    "customer": lambda x: Customer.register("王芳", "", "华东", "互联网", "web", META, external_id=x),
    "lead": lambda x: Lead.capture("王芳", "", "华东", "互联网", "web", META, external_id=x),
    "deal": lambda x: Deal.open(_sales(), CUSTOMER, "云服务", "1000", "CNY", "李娜", META, external_id=x),
    "ticket": lambda x: Ticket.open(CUSTOMER, "登录失败", "high", "phone", META, external_id=x),
    "campaign": lambda x: Campaign.plan("春季活动", "event", "1000", "CNY", META, external_id=x),
}


@pytest.mark.parametrize("kind", CREATIONS)
def test_every_creation_keeps_its_external_id_and_takes_its_derived_id(kind: str) -> None:
    record = CREATIONS[kind]("hubspot:1001")
    home = partition_of(CUSTOMER) if kind in ("deal", "ticket") else None  # a deal's, a ticket's: their customer's
    assert record.external_id == "hubspot:1001" and record.id == imported_id(kind, "hubspot:1001", home)
    assert partition_of(record.id) == (home if home is not None else partition_of(external_uuid(kind, "hubspot", "1001")))
    (created,) = record.collect_events()
    assert created.external_id == "hubspot:1001" and type(created).class_version >= 2  # a lead's 3: its variant
    assert CREATIONS[kind]("").external_id == ""


@pytest.mark.parametrize("kind", CREATIONS)
def test_an_old_creation_event_upcasts_to_no_external_id(kind: str) -> None:
    event_class = type(CREATIONS[kind]("").collect_events()[0])
    state: dict[str, object] = {}
    event_class.upcast_v1_v2(state)
    assert state == {"external_id": ""}
