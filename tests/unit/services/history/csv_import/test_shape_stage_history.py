"""Shape `stage_history`: Salesforce's OpportunityHistory and OpportunityFieldHistory, rows of all deals mixed
in any order → each deal's events in time order; one refused row refuses its deal's other rows."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from domain.external_ids import external_uuid
from services.event_envelope import event_type
from services.history.csv_import.csv_importer import plan_import
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, MAPPING, key


def _steps(events, deal: str, source: str = "salesforce") -> list[tuple]:
    deal_id = key(external_uuid("deal", source, deal))
    return [(event_type(e).split(".")[-1], getattr(e, "to_stage", getattr(e, "stage", "")))
            for e in events if key(e.originator_id) == deal_id and not hasattr(e, "changes")]  # properties: apart


def test_opportunity_history_rows_in_any_order_become_each_deals_history(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    assert [r for r in report.refused if r.file == "OpportunityHistory.csv"] == []
    assert _steps(events, "006Dn00000C1dEfGAA") == [
        ("Opened", "prospecting"), ("StageChanged", "qualification"), ("AmountChanged", ""),
        ("StageChanged", "proposal"), ("Won", "")]
    assert _steps(events, "006Dn00000C1dEfGAB") == [("Opened", "prospecting"), ("StageChanged", "qualification"),
                                                    ("Lost", "")]
    deal_b = [e for e in events if key(e.originator_id) == key(external_uuid("deal", "salesforce", "006Dn00000C1dEfGAB"))]
    assert (deal_b[0].title, deal_b[0].currency, deal_b[0].owner) == ("星辰 云平台", "CNY", "005Dn00000OwnerB2")
    assert deal_b[-1].reason == "Price" and deal_b[-1].actor == "005Dn00000OwnerB2"  # CreatedById is the actor


def test_field_history_moves_stages_changes_amount_and_owner_and_ignores_other_fields(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping-field-history.toml"))
    assert report.refused == []
    assert _steps(events, "006Dn00000C1dEfGAA") == [
        ("Opened", "prospecting"), ("StageChanged", "qualification"), ("AmountChanged", ""),
        ("StageChanged", "proposal"), ("Won", "")]
    opened = next(e for e in events if event_type(e) == "crm.Deal.Opened")
    assert opened.amount == Decimal(10000)  # the first Amount row's old value
    assert _steps(events, "006Dn00000C1dEfGAB") == [("Opened", "prospecting"), ("OwnerChanged", ""), ("Lost", "")]
    # GAC: only "created" and a Description change: opened in the stage its details give (Proposal/Price Quote)
    assert _steps(events, "006Dn00000C1dEfGAC") == [("Opened", "proposal")]


HISTORY_MAPPING = MAPPING.split('[[files]]\npath = "deals.csv"')[0] + """
[[files]]
path = "history.csv"
shape = "stage_history"
columns = { id = "Opp", stage = "Stage", amount = "Amount", created = "At", account = "Account", name = "Name" }
"""
HEADER = "Opp,Stage,Amount,At,Account,Name\n"
ACCOUNTS = "Id,Name,Created\nA1,Acme,2024-01-01T00:00:00Z\n"


def test_a_refused_row_refuses_its_deals_other_rows_naming_it(app, export) -> None:
    history = HEADER + ("O1,Stage A,10,2024-01-02T00:00:00Z,A1,One\n"
                        "O2,Stage A,10,2024-01-02T00:00:00Z,A1,Two\n"
                        "O1,Stage Q,10,2024-01-03T00:00:00Z,A1,One\n"
                        "O1,Won,10,2024-01-04T00:00:00Z,A1,One\n")
    _, report, events = plan_import(app, export({"accounts.csv": ACCOUNTS, "history.csv": history}, HISTORY_MAPPING))
    assert [(r.line, r.column) for r in report.refused] == [(2, ""), (4, ""), (5, "")]
    by_line = {r.line: r.reason for r in report.refused}
    assert by_line[4].startswith("unknown stage name 'Stage Q'")
    assert by_line[2] == by_line[5] == f"depends on refused history.csv line 4: {by_line[4]}"
    assert _steps(events, "O2", "crm1") == [("Opened", "a")]
    assert _steps(events, "O1", "crm1") == []


def test_a_deal_that_returns_to_an_open_stage_after_closing_is_reopened(app, export) -> None:
    history = HEADER + ("O1,Lost,10,2024-01-03T00:00:00Z,A1,One\n"
                        "O1,Stage B,10,2024-01-02T00:00:00Z,A1,One\n"
                        "O1,Stage C,12,2024-01-04T00:00:00Z,A1,One\n"
                        "O1,Won,12,2024-01-05T00:00:00Z,A1,One\n")
    _, report, events = plan_import(app, export({"accounts.csv": ACCOUNTS, "history.csv": history}, HISTORY_MAPPING))
    assert report.refused == []
    assert _steps(events, "O1", "crm1") == [("Opened", "b"), ("Lost", ""), ("Reopened", "c"), ("AmountChanged", ""),
                                            ("Won", "")]


def test_same_instant_rows_keep_file_order(app, export) -> None:
    history = HEADER + ("O1,Stage A,10,2024-01-02T00:00:00Z,A1,One\n"
                        "O1,Stage C,10,2024-01-02T00:00:00Z,A1,One\n"
                        "O1,Stage B,10,2024-01-02T00:00:00Z,A1,One\n")
    _, _, events = plan_import(app, export({"accounts.csv": ACCOUNTS, "history.csv": history}, HISTORY_MAPPING))
    assert [s[1] for s in _steps(events, "O1", "crm1")] == ["a", "c", "b"]
    assert {e.occurred_at for e in events if event_type(e).startswith("crm.Deal")} == \
        {datetime(2024, 1, 2, tzinfo=timezone.utc)}


def test_a_deals_properties_come_from_its_details_row_at_its_creation(app) -> None:
    _, _, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    deal_a = [e for e in events if key(e.originator_id) == key(external_uuid("deal", "salesforce", "006Dn00000C1dEfGAA"))]

    # [files.properties] "Product__c" = "product": set right after Opened, at its instant, so a funnel
    # grouped or filtered by product sees it as of any time the deal exists
    assert event_type(deal_a[1]).endswith("PropertiesChanged")
    assert (deal_a[1].changes, deal_a[1].occurred_at) == ({"product": "Anvil"}, deal_a[0].occurred_at)
