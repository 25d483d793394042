"""The write side: each event becomes a typed row of its table (that every table declares its row type is
checked in tests/unit/projections/test_tables.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.pipeline import LOST, WON
from projections.campaigns import handlers as tables
from projections.campaigns import rows
from projections.campaigns.handlers import CampaignsReadModel
from projections.tables import Table, micros
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ChangeAmount, CloseCampaign, ContactLead, ConvertLead, DisqualifyLead,
                               LaunchCampaign, LoseDeal, OpenDeal, PlanCampaign, QualifyLead, RecordCost,
                               RecordResponse, RegisterCustomer, ReopenDeal, WinDeal)
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at


@pytest.fixture
def written(crm: CrmApplication) -> Iterator[Any]:
    """Catches the read model up with `crm`'s log, then gives a table's rows, typed, in column order."""
    store = ReadModelStore(database_from_url("memory://"))

    def rows_of(table: Table) -> list[Any]:
        Projector(crm, store, [CampaignsReadModel()]).catch_up()
        columns = ", ".join(table.column_names)
        fetched = store.query(f"SELECT {columns} FROM {table.name} ORDER BY {columns}")
        return [table.row_of(values) for values in fetched]
    yield rows_of
    store.close()


def _micros(days: float) -> int:
    return micros(at(days).occurred_at)


def test_a_campaign_plan_and_its_statuses_in_order(crm: CrmApplication, written: Any) -> None:
    w = crm.plan_campaign(PlanCampaign("春季展会", "event", "10000.50"), at(0))
    crm.launch_campaign(LaunchCampaign(w), at(1))
    crm.close_campaign(CloseCampaign(w), at(30))

    assert written(tables.PLANS) == [rows.PlanRow(str(w), "春季展会", "event", 1000050, "CNY", _micros(0))]
    assert written(tables.STATUSES) == [rows.StatusRow(str(w), 1, _micros(0), "planned"),
                                        rows.StatusRow(str(w), 2, _micros(1), "launched"),
                                        rows.StatusRow(str(w), 3, _micros(30), "closed")]


def test_a_lead_row_is_captured_then_qualified_then_converted(crm: CrmApplication, written: Any) -> None:
    w = crm.plan_campaign(PlanCampaign("春季展会", "event", "10000"), at(0))
    crm.launch_campaign(LaunchCampaign(w), at(1))
    lead = crm.capture_lead(CaptureLead("王五", "华东", "制造业", "event", campaign_id=w), at(2))
    crm.record_response(RecordResponse(w, "click", lead_id=lead), at(2))
    assert written(tables.LEADS) == [rows.LeadRow(str(lead), str(w), _micros(2), None, None, None, None, "华东", "制造业")]

    crm.assign_lead(AssignLead(lead, "李娜", "manual"), at(2))
    crm.contact_lead(ContactLead(lead, "phone", ""), at(2))
    crm.qualify_lead(QualifyLead(lead, ""), at(4))
    customer, _ = crm.convert_lead(ConvertLead(lead, "采购", "1000", "CNY"), at(5))

    assert written(tables.LEADS) == [rows.LeadRow(str(lead), str(w), _micros(2), _micros(4), _micros(5),
                                                  str(customer), None, "华东", "制造业")]
    # on the lead's stream (its version 2); a log's older Campaign.ResponseRecorded gives the same row but for
    # the stream: the campaign's, at its version
    assert written(tables.RESPONSES) == [rows.ResponseRow(str(w), 2, _micros(2), "click", None, str(lead), str(lead))]


def test_a_disqualified_lead_row_says_when(crm: CrmApplication, written: Any) -> None:
    lead = crm.capture_lead(CaptureLead("赵六", "华东", "制造业", "web"), at(1))
    crm.disqualify_lead(DisqualifyLead(lead, "无预算"), at(3))

    assert written(tables.LEADS) == [rows.LeadRow(str(lead), None, _micros(1), None, None, None, _micros(3), "华东", "制造业")]


def test_a_deal_row_and_its_amounts_wins_losses_and_reopenings(crm: CrmApplication, written: Any) -> None:
    s = crm.plan_campaign(PlanCampaign("搜索推广", "search_ads", "5000"), at(0))
    crm.record_cost(RecordCost(s, "2000.01"), at(3))
    c = crm.register_customer(RegisterCustomer("赵六", "华东", "制造业", "event"), at(0))
    d = crm.open_deal(OpenDeal(c, "直购", "300", owner="李娜", campaign_id=s), at(1))
    crm.change_amount(ChangeAmount(d, "350"), at(2))
    crm.win_deal(WinDeal(d), at(14))
    crm.reopen_deal(ReopenDeal(d, "重新谈判"), at(18))
    crm.lose_deal(LoseDeal(d, "预算"), at(19))

    assert written(tables.COSTS) == [rows.CostRow(str(s), 2, _micros(3), 200001)]
    assert written(tables.CUSTOMERS) == [rows.CustomerRow(str(c), "event", None, _micros(0), "华东", "制造业")]
    assert written(tables.DEALS) == [rows.DealRow(str(d), str(c), str(s), None, _micros(1), "CNY")]
    events = sorted(written(tables.DEAL_EVENTS), key=lambda e: e.seq)
    assert [(e.kind, e.amount_cents, e.occurred_at) for e in events] == [
        (rows.AMOUNT, 30000, _micros(1)), (rows.AMOUNT, 35000, _micros(2)), (WON, None, _micros(14)),
        (rows.REOPENED, None, _micros(18)), (LOST, None, _micros(19))]
