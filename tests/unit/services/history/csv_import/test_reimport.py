"""Re-importing a grown or corrected export (`Session.reconcile`): a record already in the log is compared
with it: unchanged → nothing written; the log's events a prefix of the file's → the rest appended; anything
else → the record refused, naming its first differing row."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from domain.deal import Deal
from domain.external_ids import external_uuid
from services.history.csv_import.csv_importer import CsvImportRefused, mapping_for, run_csv_import
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, logged_id

CLOSED_WON = "006Dn00000C1dEfGAC,Closed Won,5000,2024-06-30,2024-03-20T12:00:00.000Z,005Dn00000OwnerA1\n"
NEW_MEMBER = "00vDn4,701Dn00000E1fGhAAA,00QDn00000D1eFgAAB,,Responded,true,2024-02-10,2024-02-04T10:00:00.000Z\n"


@pytest.fixture
def salesforce(tmp_path: Path, sqlite_app) -> Path:
    """The Salesforce sample, copied and imported once; the copy's folder."""
    folder = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", folder)
    run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    return folder


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_a_new_closed_won_row_of_an_imported_opportunity_closes_the_deal(sqlite_app, salesforce: Path) -> None:
    _append(salesforce / "OpportunityHistory.csv", CLOSED_WON)
    mapping = load_mapping(salesforce / "mapping.toml")
    dry = run_csv_import(sqlite_app, mapping, dry_run=True)
    assert "Records already in the log: " in "\n".join(dry.lines()) and dry.extended == 1
    report = run_csv_import(sqlite_app, mapping)
    assert report.refused == [] and report.events == {"crm.Deal.Won": 1} and report.written == 1
    assert sqlite_app.get(Deal, logged_id(sqlite_app, "deal", "salesforce", "006Dn00000C1dEfGAC")).status == "won"
    assert run_csv_import(sqlite_app, mapping).written == 0  # and again: unchanged


def test_a_new_member_of_an_imported_campaign_is_recorded(sqlite_app, salesforce: Path) -> None:
    _append(salesforce / "CampaignMember.csv", NEW_MEMBER)
    report = run_csv_import(sqlite_app, load_mapping(salesforce / "mapping.toml"))
    assert report.refused == [] and report.events == {"crm.Campaign.ResponseRecorded": 1}
    campaign = external_uuid("campaign", "salesforce", "701Dn00000E1fGhAAA")
    events = [type(e).__name__ for e in sqlite_app.events.get(campaign)]
    assert events.count("ResponseRecorded") == 3
    assert run_csv_import(sqlite_app, load_mapping(salesforce / "mapping.toml")).written == 0


def test_a_changed_row_of_an_imported_record_is_refused_naming_the_row(sqlite_app, salesforce: Path) -> None:
    history = salesforce / "OpportunityHistory.csv"
    history.write_text(history.read_text(encoding="utf-8").replace(
        "006Dn00000C1dEfGAB,Closed Lost,80000", "006Dn00000C1dEfGAB,Closed Won,80000"), encoding="utf-8")
    mapping = load_mapping(salesforce / "mapping.toml")
    with pytest.raises(CsvImportRefused) as refused:
        run_csv_import(sqlite_app, mapping)
    lines = [r for r in refused.value.report.refused if r.file == "OpportunityHistory.csv"]
    first = next(r for r in lines if "differs from the log" in r.reason)
    assert "crm.Deal.Lost" in first.reason and "crm.Deal.Won" in first.reason
    assert first.values["StageName"] == "Closed Won"
    count = sqlite_app.event_count()
    report = run_csv_import(sqlite_app, mapping, rejects=salesforce / "rejects.csv")
    assert report.written == 0 and sqlite_app.event_count() == count
    with (salesforce / "rejects.csv").open(encoding="utf-8", newline="") as rejected:
        rows = list(csv.DictReader(rejected))
    assert {row["OpportunityId"] for row in rows} == {"006Dn00000C1dEfGAB"}


def test_members_alone_of_a_campaign_in_the_log_add_only_the_new_ones(sqlite_app, salesforce: Path) -> None:
    _append(salesforce / "CampaignMember.csv", NEW_MEMBER)
    mapping = mapping_for(salesforce / "mapping.toml", salesforce / "CampaignMember.csv")
    report = run_csv_import(sqlite_app, mapping)
    assert report.refused == [] and report.events == {"crm.Campaign.ResponseRecorded": 1}
    assert run_csv_import(sqlite_app, mapping).written == 0


# --- [files.details] beside OpportunityHistory.csv (review12 finding 2) ---

ORPHAN = ('006Dn00000C1dEfGAZ,Orphan opp,001Dn00000A1bCdEAF,Closed Won,"99,000.00",USD,2024-02-20,'
          '2024-01-10T14:00:00.000Z,005Dn00000OwnerA1,true,true,,Anvil\n')
DUPLICATE = ('006Dn00000C1dEfGAA,Acme DUP,001Dn00000A1bCdEAF,Closed Won,"1.00",EUR,2024-02-20,'
             '2024-01-10T14:00:00.000Z,005Dn00000OwnerB2,true,true,,Anvil\n')


def _sample(tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    shutil.copytree(FIXTURES / "salesforce", folder)
    return folder


def test_an_id_twice_in_the_details_is_refused_naming_both_lines(sqlite_app, tmp_path: Path) -> None:
    folder = _sample(tmp_path)
    _append(folder / "Opportunity.csv", DUPLICATE)
    with pytest.raises(CsvImportRefused) as refused:
        run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    (row,) = refused.value.report.refused
    assert (row.file, row.line, row.column) == ("Opportunity.csv", 5, "Id")
    assert row.reason == "duplicate id '006Dn00000C1dEfGAA' (first at Opportunity.csv line 2)"
    assert sqlite_app.event_count() == 0


def test_an_opportunity_of_the_details_without_history_is_imported_from_its_row(sqlite_app, tmp_path: Path
                                                                                ) -> None:
    folder = _sample(tmp_path)
    _append(folder / "Opportunity.csv", ORPHAN)
    report = run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    assert report.refused == [] and report.rows_read["Opportunity.csv"] == 4
    deal = sqlite_app.get(Deal, logged_id(sqlite_app, "deal", "salesforce", "006Dn00000C1dEfGAZ"))
    assert (deal.title, deal.status, deal.amount, deal.currency) == ("Orphan opp", "won", 99000, "USD")


def test_without_created_in_the_details_an_orphan_is_refused_not_dropped(sqlite_app, tmp_path: Path) -> None:
    folder = _sample(tmp_path)
    _append(folder / "Opportunity.csv", ORPHAN)
    mapping = folder / "mapping.toml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(', created = "CreatedDate"', ""), encoding="utf-8")
    with pytest.raises(CsvImportRefused) as refused:
        run_csv_import(sqlite_app, load_mapping(mapping))
    (row,) = refused.value.report.refused
    assert (row.file, row.line) == ("Opportunity.csv", 5) and "has no row in OpportunityHistory.csv" in row.reason
