"""Shape `opportunities`: one row per deal with stage-entered dates → Opened, StageChanged in time order,
Won/Lost; each refusal reason of a row."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from domain.external_ids import external_uuid
from services.event_envelope import event_type
from services.history.csv_import.csv_importer import plan_import
from services.history.csv_import.csv_rows import FileRefused
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, MAPPING, deals, key


def _steps(events, source: str, deal: str) -> list[tuple]:
    """(type, stage or outcome, instant) of one deal's events, but its properties (tested apart)."""
    deal_id = key(external_uuid("deal", source, deal))
    return [(event_type(e).split(".")[-1], getattr(e, "to_stage", getattr(e, "stage", "")),
             e.occurred_at) for e in events if key(e.originator_id) == deal_id and not hasattr(e, "changes")]


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_hubspot_deals_become_their_stage_history_in_time_order(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "hubspot" / "mapping.toml"))
    assert report.refused == []
    berlin_winter = 1  # hours ahead of UTC in January–March
    assert _steps(events, "hubspot", "9001") == [
        ("Opened", "appointmentscheduled", _utc(2024, 1, 5, 10 - berlin_winter)),
        ("StageChanged", "qualifiedtobuy", _utc(2024, 1, 12, 9 - berlin_winter)),
        ("StageChanged", "presentationscheduled", _utc(2024, 1, 30, 14 - berlin_winter)),
        ("StageChanged", "contractsent", _utc(2024, 2, 20, 11 - berlin_winter)),
        ("Won", "", _utc(2024, 3, 1, 16 - berlin_winter, 30)),
    ]
    assert [s[:2] for s in _steps(events, "hubspot", "9002")] == [
        ("Opened", "appointmentscheduled"), ("StageChanged", "qualifiedtobuy"), ("Lost", "")]
    lost = next(e for e in events if event_type(e) == "crm.Deal.Lost")
    assert lost.reason == "Budget"


def test_an_open_deal_keeps_its_close_date_as_expected_close_and_an_empty_amount_is_zero(app) -> None:
    _, _, events = plan_import(app, load_mapping(FIXTURES / "hubspot" / "mapping.toml"))
    opened = next(e for e in events if event_type(e) == "crm.Deal.Opened"
                  and key(e.originator_id) == key(external_uuid("deal", "hubspot", "9003")))
    assert (opened.expected_close, opened.amount, opened.currency, opened.title) == \
        (date(2024, 5, 31), Decimal(0), "USD", "Pied Piper compression")
    chinese = next(e for e in events if event_type(e) == "crm.Deal.Opened"
                   and key(e.originator_id) == key(external_uuid("deal", "hubspot", "9002")))
    assert (chinese.title, chinese.owner, chinese.amount, chinese.currency) == \
        ("未来机器人 试点", "王伟", Decimal(120000), "CNY")


def test_internal_property_names_epoch_milliseconds_and_companies_registered_from_the_deal(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "hubspot" / "mapping-internal.toml"))
    assert report.refused == []
    assert _steps(events, "hubspot", "9101") == [
        ("Opened", "appointmentscheduled", _utc(2024, 1, 4, 10)),
        ("StageChanged", "qualifiedtobuy", _utc(2024, 1, 15, 10)),
        ("Won", "", _utc(2024, 2, 1, 10)),
    ]
    assert report.events["crm.Customer.Registered"] == 2


def test_salesforce_opportunity_rows_close_by_is_closed_and_is_won(app, export) -> None:
    mapping = (FIXTURES / "salesforce" / "mapping-opportunities.toml")
    _, report, events = plan_import(app, load_mapping(mapping))
    assert report.refused == []
    assert [s[:2] for s in _steps(events, "salesforce", "006Dn00000C1dEfGAA")] == [("Opened", "prospecting"),
                                                                                  ("Won", "")]
    assert [s[:2] for s in _steps(events, "salesforce", "006Dn00000C1dEfGAC")] == [("Opened", "proposal")]
    won = _steps(events, "salesforce", "006Dn00000C1dEfGAA")[-1]
    assert won[2] == datetime(2024, 2, 20, 5, tzinfo=timezone.utc)  # CloseDate: that day in New York
    products = {key(e.originator_id): e.changes for e in events if hasattr(e, "changes")}  # [files.properties]
    assert products[key(external_uuid("deal", "salesforce", "006Dn00000C1dEfGAC"))] == {"product": "Pilot"}


def test_a_close_date_on_the_day_of_the_last_change_is_that_day_not_midnight_before_it(app, export) -> None:
    mapping = export(deals("D1,Deal,A1,Won,10,USD,2024-02-01T15:00:00Z,2024-02-01,ann,,,,"))
    _, report, events = plan_import(app, mapping)
    assert report.refused == []
    assert _steps(events, "crm1", "D1")[-1] == ("Won", "", _utc(2024, 2, 1, 15))


@pytest.mark.parametrize(("row", "column", "reason"), [
    ("D1,Deal,A1,Nowhere,10,USD,2024-02-01T15:00:00Z,,ann,,,,", "", "unknown stage name 'Nowhere'"),
    ("D1,Deal,A1,Won,10,USD,2024-02-01T15:00:00Z,2024-01-01,ann,,,,", "Closed", "closed (2024-01-01"),
    ("D1,Deal,A1,Stage A,ten,USD,2024-02-01T15:00:00Z,,ann,,,,", "Amount", "bad amount"),
    ("D1,Deal,A1,Stage A,10,XYZ,2024-02-01T15:00:00Z,,ann,,,,", "Currency", "unknown currency"),
    ("D1,Deal,A1,Stage A,10,USD,yesterday,,ann,,,,", "Created", "bad date 'yesterday'"),
    ("D1,Deal,A1,Stage A,10,USD,,,ann,,,,", "Created", "is empty"),
    ("D1,Deal,A9,Stage A,10,USD,2024-02-01T15:00:00Z,,ann,,,,", "Account", "unknown account 'A9'"),
    ("D1,Deal,A1,Stage A,-5,USD,2024-02-01T15:00:00Z,,ann,,,,", "Amount", "must not be negative"),
    ("D1,Deal,A1,Stage A,10,USD,2024-02-01T15:00:00Z,,ann,2024-02-01T15:00:00Z,31.02.2024,,",
     "entered b", "bad date '31.02.2024'"),
    (",Deal,A1,Stage A,10,USD,2024-02-01T15:00:00Z,,ann,,,,", "Id", "is empty"),
])
def test_each_refusal_names_the_line_the_column_and_why(app, export, row, column, reason) -> None:
    _, report, events = plan_import(app, export(deals("D0,Fine,A2,Stage B,1,USD,2024-01-02T00:00:00Z,,bo,,,,", row)))
    (refused,) = report.refused
    assert (refused.file, refused.line, refused.column) == ("deals.csv", 3, column)
    assert reason in refused.reason
    assert refused.values["Name"] == "Deal"
    assert report.events["crm.Deal.Opened"] == 1  # the good row stays planned


def test_a_duplicate_id_is_refused_naming_the_first(app, export) -> None:
    _, report, _ = plan_import(app, export(deals("D1,One,A1,Stage A,1,USD,2024-01-02T00:00:00Z,,bo,,,,",
                                                 "D1,Two,A1,Stage A,1,USD,2024-01-02T00:00:00Z,,bo,,,,")))
    (refused,) = report.refused
    assert refused.line == 3 and refused.reason == "duplicate id 'D1' (first at deals.csv line 2)"


def test_a_deal_of_a_refused_account_is_refused_naming_it(app, export) -> None:
    files = deals("D1,One,A3,Stage A,1,USD,2024-01-02T00:00:00Z,,bo,,,,")
    files["accounts.csv"] += "A3,,2024-01-01T00:00:00Z\n"
    _, report, _ = plan_import(app, export(files))
    assert [(r.file, r.line) for r in report.refused] == [("accounts.csv", 4), ("deals.csv", 2)]
    assert report.refused[1].reason.startswith("account 'A3' was refused (accounts.csv line 4: ")


def test_a_column_the_mapping_names_but_the_file_lacks_refuses_the_file(app, export) -> None:
    files = deals()
    files["deals.csv"] = files["deals.csv"].replace("Owner,", "Seller,")
    with pytest.raises(FileRefused, match=r"line 1: missing required column 'Owner' \(owner\)"):
        plan_import(app, export(files))


def test_rows_in_any_order_and_stages_entered_out_of_pipeline_order(app, export) -> None:
    mapping = export(deals("D2,Two,A1,Stage B,1,USD,2024-01-05T00:00:00Z,,bo,2024-01-05T00:00:00Z,"
                           "2024-01-07T00:00:00Z,2024-01-06T00:00:00Z,",
                           "D1,One,A1,Stage C,1,USD,2024-01-02T00:00:00Z,,bo,,,,"))
    _, report, events = plan_import(app, mapping)
    assert report.refused == []
    assert [s[1] for s in _steps(events, "crm1", "D2")] == ["a", "c", "b"]
    assert [s[:2] for s in _steps(events, "crm1", "D1")] == [("Opened", "c")]


def test_a_property_column_the_file_lacks_refuses_the_file_and_an_empty_cell_sets_nothing(app, export) -> None:
    with_product = MAPPING + '[files.properties]\n"Product" = "product"\n'
    with pytest.raises(FileRefused, match=r"missing required column 'Product' \(property product\)"):
        plan_import(app, export(deals(), with_product))

    files = deals("D1,Deal,A1,a,10,USD,2024-02-01T15:00:00Z,,ann,,,,,GTX",
                  "D2,Deal,A1,a,10,USD,2024-02-01T15:00:00Z,,ann,,,,,")
    files["deals.csv"] = files["deals.csv"].replace("entered won\n", "entered won,Product\n", 1)
    _, report, events = plan_import(app, export(files, with_product))
    assert report.refused == []
    assert [(key(e.originator_id), e.changes) for e in events if hasattr(e, "changes")] == [
        (key(external_uuid("deal", "crm1", "D1")), {"product": "GTX"})]
