"""The application and an installation's vocabularies: commands check what they record against them, each
process keeps a copy (read again on a refusal, and after `VOCABULARY_TTL_SECONDS`), and values recorded
before a retirement are carried on (a converted lead)."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import DomainError
from services import application as application_module
from services.application import AlreadyExists, ConcurrencyConflict, CrmApplication
from services.commands import (AddVocabularyValue, AssignLead, CaptureLead, ContactLead, ConvertLead, LogTouch,
                               LoseDeal, OpenDeal, QualifyLead, RegisterCustomer, RetireVocabularyValue, SetVocabulary)
from services.settings import database_from_url
from tests.conftest import at


@pytest.fixture
def two_processes(tmp_path: Path):
    """Two applications on one SQLite log, as two `crm` processes or API workers."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    first, second = CrmApplication(database_from_url(url)), CrmApplication(database_from_url(url))
    first.ensure_default_pipelines(at(-30, "setup"))
    yield first, second
    first.close()
    second.close()


def test_a_value_another_process_added_is_accepted_at_once(two_processes) -> None:
    first, second = two_processes
    second.capture_lead(CaptureLead("王芳", channel="web"), at(0))  # second now holds a copy of the defaults

    first.add_vocabulary_value(AddVocabularyValue("acquisition_channel", "直播"), at(1))

    lead = second.capture_lead(CaptureLead("李雷", channel="直播"), at(2))
    assert second.history(lead)[0].channel == "直播"


def test_a_value_retired_elsewhere_is_refused_once_the_copy_is_older_than_the_ttl(two_processes, monkeypatch) -> None:
    first, second = two_processes
    second.capture_lead(CaptureLead(channel="partner"), at(0))
    first.retire_vocabulary_value(RetireVocabularyValue("acquisition_channel", "partner"), at(1))

    with pytest.raises(DomainError, match="unknown acquisition channel 'partner'"):
        first.capture_lead(CaptureLead(channel="partner"), at(2))  # the process that retired it: at once
    monkeypatch.setattr(application_module, "VOCABULARY_TTL_SECONDS", 0.0)
    with pytest.raises(DomainError, match="unknown acquisition channel 'partner'"):
        second.capture_lead(CaptureLead(channel="partner"), at(2))


def test_the_vocabularies_are_read_once_per_ttl_not_per_command(crm: CrmApplication, monkeypatch) -> None:
    reads: list[str] = []
    read = crm.vocabulary
    monkeypatch.setattr(crm, "vocabulary", lambda kind: reads.append(kind) or read(kind))

    for day in range(20):
        crm.register_customer(RegisterCustomer(f"客户{day}", "华东", "零售", "web"), at(day))

    assert len(reads) == 5  # one look per kind, for the first command


def test_every_command_checks_its_vocabulary(crm: CrmApplication) -> None:
    crm.set_vocabulary(SetVocabulary("loss_reason", ["价格", "竞品"]), at(0))
    crm.set_vocabulary(SetVocabulary("touch_channel", ["微信", "phone"]), at(0))
    crm.set_vocabulary(SetVocabulary("region", ["华东", "华南"]), at(0))
    customer = crm.register_customer(RegisterCustomer("张三", "华东"), at(1))
    deal = crm.open_deal(OpenDeal(customer, "采购", "100"), at(1))

    refusals = [
        (lambda: crm.register_customer(RegisterCustomer("李四", "西北"), at(2)), "unknown region '西北'"),
        (lambda: crm.log_touch(LogTouch(customer, "email", "inbound", ""), at(2)), "unknown touch channel 'email'"),
        (lambda: crm.lose_deal(LoseDeal(deal, "太贵"), at(2)), "unknown loss reason '太贵'"),
    ]
    for attempt, message in refusals:
        with pytest.raises(DomainError, match=message):
            attempt()
    crm.log_touch(LogTouch(customer, "微信", "inbound", ""), at(3))
    crm.lose_deal(LoseDeal(deal, "竞品"), at(3))
    assert crm.history(deal)[-1].reason == "竞品"


def test_a_nameless_lead_whose_channel_was_retired_still_converts(crm: CrmApplication) -> None:
    lead = crm.capture_lead(CaptureLead(company="杭州云启科技有限公司", channel="partner"), at(0))
    crm.assign_lead(AssignLead(lead, "李娜"), at(1))
    crm.contact_lead(ContactLead(lead), at(2))
    crm.qualify_lead(QualifyLead(lead), at(3))
    crm.retire_vocabulary_value(RetireVocabularyValue("acquisition_channel", "partner"), at(3))

    customer, _ = crm.convert_lead(ConvertLead(lead, "云服务", "100"), at(4))

    registered = crm.history(customer)[0]
    assert (registered.name, registered.channel, registered.region) == ("杭州云启科技有限公司", "partner", "unknown")
    assert crm.history(lead)[2].channel == "unknown"  # contacted without saying how


def test_a_change_to_a_kind_never_defined_records_its_defaults_first(crm: CrmApplication) -> None:
    version = crm.add_vocabulary_value(AddVocabularyValue("touch_channel", "微信"), at(0))

    assert version == 2
    assert crm.vocabulary("touch_channel").as_dict()["values"][-2:] == ["event", "微信"]
    with pytest.raises(ConcurrencyConflict, match="has its defaults \\(version 0\\)"):
        crm.add_vocabulary_value(AddVocabularyValue("industry", "金融", expected_version=3), at(1))
    with pytest.raises(ConcurrencyConflict, match="is at version 2, not the expected 1"):
        crm.retire_vocabulary_value(RetireVocabularyValue("touch_channel", "微信", expected_version=1), at(1))


def test_an_imported_record_is_checked_against_the_vocabularies_and_kept_once(crm: CrmApplication) -> None:
    """A creation command with an external id (part extids) checks its values like any other: an installation's
    channel is accepted, a retired one refused before the external id is looked at; a second one is AlreadyExists."""
    crm.add_vocabulary_value(AddVocabularyValue("acquisition_channel", "直播"), at(0))
    customer = crm.register_customer(RegisterCustomer("王芳", channel="直播", source="hubspot", external_id="7"), at(1))
    registered = crm.history(customer)[0]
    assert (registered.channel, registered.region, registered.external_id) == ("直播", "unknown", "hubspot:7")

    with pytest.raises(AlreadyExists):
        crm.register_customer(RegisterCustomer("王芳", channel="直播", source="hubspot", external_id="7"), at(2))
    crm.retire_vocabulary_value(RetireVocabularyValue("acquisition_channel", "直播"), at(3))
    with pytest.raises(DomainError, match="unknown acquisition channel '直播'"):
        crm.capture_lead(CaptureLead("李雷", channel="直播", source="hubspot", external_id="8"), at(4))
