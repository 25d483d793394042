"""The application service on the in-memory and SQLite stores: atomic saves, conflicts, read-back."""

from datetime import date
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead
from services.application import ConcurrencyConflict, CrmApplication, NotFound
from services.commands import (AssignLead, CaptureLead, ChangeCustomerProperties, ChangeDealProperties,
                               ChangeLeadProperties, ChangeStage, ContactLead, ConvertLead, DisqualifyLead, LogTouch,
                               LoseDeal, OpenDeal, QualifyLead, RegisterCustomer)
from services.settings import database_from_url
from tests.conftest import at


def _customer(crm: CrmApplication) -> UUID:
    return crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某科技有限公司"), at(0))


def test_deal_history_reads_back_every_change_in_order_with_chinese_text(crm: CrmApplication) -> None:
    deal_id = crm.open_deal(OpenDeal(_customer(crm), "ERP 采购", "150000.00",
                                     owner="李娜", expected_close=date(2026, 6, 30)), at(1))
    crm.change_stage(ChangeStage(deal_id, "first_contact", "客户回电，约了演示"), at(2, "王伟"))
    crm.lose_deal(LoseDeal(deal_id, "价格太高"), at(3))

    events = crm.history(deal_id)

    assert [type(e).__name__ for e in events] == ["Opened", "StageChanged", "Lost"]
    assert events[0].amount == Decimal("150000.00") and events[0].expected_close == date(2026, 6, 30)
    assert (events[1].from_stage, events[1].to_stage, events[1].reason) == ("lead", "first_contact", "客户回电，约了演示")
    assert events[1].actor == "王伟" and events[1].occurred_at == at(2).occurred_at
    assert events[2].reason == "价格太高"


def test_converting_a_qualified_lead_creates_customer_and_deal_in_one_save(crm: CrmApplication) -> None:
    lead_id = crm.capture_lead(CaptureLead("李雷", "华东", "互联网", "search_ads", company="杭州云启科技有限公司"), at(0))
    crm.assign_lead(AssignLead(lead_id, "王伟", "round_robin"), at(0.1))
    crm.contact_lead(ContactLead(lead_id, "phone", "首次沟通"), at(0.5))
    crm.qualify_lead(QualifyLead(lead_id, "预算明确"), at(1))

    customer_id, deal_id = crm.convert_lead(ConvertLead(lead_id, "云服务采购", "80000", "CNY"), at(2))

    customer, deal = crm.get(Customer, customer_id), crm.get(Deal, deal_id)
    assert (customer.name, customer.company, customer.channel) == ("李雷", "杭州云启科技有限公司", "search_ads")
    assert (deal.customer_id, deal.owner, deal.stage, deal.pipeline) == (customer_id, "王伟", "lead", "sales")
    converted = crm.history(lead_id)[-1]
    assert (converted.customer_id, converted.deal_id) == (customer_id, deal_id)


def test_a_converted_leads_properties_pass_to_its_deal_in_the_same_save(crm: CrmApplication) -> None:
    lead_id = crm.capture_lead(CaptureLead("李雷", "华东", "互联网", "search_ads"), at(0))
    crm.assign_lead(AssignLead(lead_id, "王伟", "round_robin"), at(0.1))
    crm.change_lead_properties(ChangeLeadProperties(lead_id, {"product": "GTX Pro", "account_size": "中型"}), at(0.2))
    crm.contact_lead(ContactLead(lead_id, "phone", "首次沟通"), at(0.5))
    crm.qualify_lead(QualifyLead(lead_id, "预算明确"), at(1))

    customer_id, deal_id = crm.convert_lead(ConvertLead(lead_id, "云服务采购", "80000", "CNY"), at(2))

    assert crm.get(Deal, deal_id).properties == {"product": "GTX Pro", "account_size": "中型"}
    assert crm.get(Customer, customer_id).properties == {}  # the deal carries the opportunity on
    opened, changed = crm.history(deal_id)
    assert (type(changed).__qualname__, changed.occurred_at) == ("Deal.PropertiesChanged", opened.occurred_at)


def test_properties_of_the_three_kinds_are_changed_by_their_commands_at_the_version_seen(
        crm: CrmApplication) -> None:
    customer_id = _customer(crm)
    deal_id = crm.open_deal(OpenDeal(customer_id, "ERP 采购", "100"), at(1))
    lead_id = crm.capture_lead(CaptureLead("李雷", "华东", "互联网", "search_ads"), at(0))

    assert crm.change_customer_properties(ChangeCustomerProperties(customer_id, {"account_size": "大型"},
                                                                   expected_version=1), at(2)) == 2
    assert crm.change_deal_properties(ChangeDealProperties(deal_id, {"product": "ERP"}), at(2)) == 2
    assert crm.change_lead_properties(ChangeLeadProperties(lead_id, {"team": "华东一组"}), at(2)) == 2
    with pytest.raises(ConcurrencyConflict):
        crm.change_deal_properties(ChangeDealProperties(deal_id, {"product": "CRM"}, expected_version=1), at(3))
    with pytest.raises(DomainError, match="e-mail address or a phone number"):
        crm.change_deal_properties(ChangeDealProperties(deal_id, {"manager": "li@example.com"}), at(3))
    assert crm.get(Deal, deal_id).properties == {"product": "ERP"}


def test_a_refused_conversion_writes_nothing(crm: CrmApplication) -> None:
    lead_id = crm.capture_lead(CaptureLead("韩梅梅", "华北", "教育", "event"), at(0))
    crm.disqualify_lead(DisqualifyLead(lead_id, "无预算"), at(1))
    before = crm.event_count()

    with pytest.raises(DomainError, match="disqualified"):
        crm.convert_lead(ConvertLead(lead_id, "培训平台", "1000", "CNY"), at(2))

    assert crm.event_count() == before
    assert crm.get(Lead, lead_id).status == "disqualified"


def test_a_stale_expected_version_is_a_conflict_and_writes_nothing(crm: CrmApplication) -> None:
    deal_id = crm.open_deal(OpenDeal(_customer(crm), "ERP", "1000",
                                     owner="李娜"), at(1))
    crm.change_stage(ChangeStage(deal_id, "first_contact", "", expected_version=1), at(2))
    before = crm.event_count()

    with pytest.raises(ConcurrencyConflict, match="version 2, not the expected 1"):
        crm.change_stage(ChangeStage(deal_id, "proposal", "", expected_version=1), at(3))

    assert crm.event_count() == before
    assert crm.get(Deal, deal_id).stage == "first_contact"


def test_two_writers_of_one_deal_on_one_sqlite_file_cannot_both_commit(tmp_path: Path) -> None:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    first, second = CrmApplication(database), CrmApplication(database)
    first.ensure_default_pipelines(at(-1))
    deal_id = first.open_deal(OpenDeal(_customer(first), "ERP", "1000",
                                       owner="李娜"), at(1))
    pipeline = first.pipeline("sales")
    mine, theirs = first.get(Deal, deal_id), second.get(Deal, deal_id)
    mine.change_stage(pipeline, "first_contact", "mine", at(2))
    theirs.change_stage(pipeline, "proposal", "theirs", at(2))
    first.save_new(mine)

    with pytest.raises(ConcurrencyConflict):
        second.save_new(theirs)

    assert [e.reason for e in second.history(deal_id)[1:]] == ["mine"]


def test_sqlite_log_survives_reopening(tmp_path: Path) -> None:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    writer = CrmApplication(database)
    writer.ensure_default_pipelines(at(-1))
    customer_id = _customer(writer)
    writer.close()

    reader = CrmApplication(database)

    assert reader.get(Customer, customer_id).company == "上海某某科技有限公司"
    assert reader.event_count() == 4  # three pipeline definitions and the registration


def test_defining_the_default_pipelines_twice_records_them_once(crm: CrmApplication) -> None:
    crm.ensure_default_pipelines(at(0))
    assert crm.event_count() == 3
    assert crm.pipeline("sales").stage_keys[0] == "lead"


def test_unknown_ids_and_wrong_aggregate_types_are_not_found(crm: CrmApplication) -> None:
    customer_id = _customer(crm)
    with pytest.raises(NotFound, match="no deal with id"):
        crm.get(Deal, uuid4())
    with pytest.raises(NotFound, match="is a customer, not a deal"):
        crm.change_stage(ChangeStage(customer_id, "proposal", ""), at(1))


def test_unknown_pipeline_is_refused(crm: CrmApplication) -> None:
    with pytest.raises(DomainError, match="unknown pipeline 'partners'"):
        crm.open_deal(OpenDeal(_customer(crm), "ERP", "1", pipeline="partners", owner="李娜"), at(1))


def test_the_log_is_totally_ordered_across_aggregates(crm: CrmApplication) -> None:
    customer_id = _customer(crm)
    deal_id = crm.open_deal(OpenDeal(customer_id, "ERP", "1", owner="李娜"), at(1))
    crm.log_touch(LogTouch(customer_id, "phone", "outbound", "电话回访"), at(2))
    crm.change_stage(ChangeStage(deal_id, "proposal", ""), at(3))

    log = list(crm.read_log())

    assert [n for n, _ in log] == list(range(1, 8))
    assert [type(e).__name__ for _, e in log[3:]] == ["Registered", "Opened", "TouchLogged", "StageChanged"]
