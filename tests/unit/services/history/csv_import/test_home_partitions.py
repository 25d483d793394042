"""The CSV import makes deals and tickets in their account's home partition (`domain.partitions`), with ids
that stay deterministic: importing an export again writes nothing, and a deal imported before home
partitions (under its bare source-id UUID) is found and extended, never imported a second time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from domain import external_ids
from domain.deal import Deal
from domain.partitions import partition_of
from domain.ticket import Ticket
from services.history.csv_import.csv_importer import CsvImportRefused, plan_import, run_csv_import
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES

MAPPINGS = sorted(FIXTURES.glob("*/mapping*.toml"))
CLOSED_WON = "006Dn00000C1dEfGAC,Closed Won,5000,2024-06-30,2024-03-20T12:00:00.000Z,005Dn00000OwnerA1\n"


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_fixture_makes_its_deals_and_tickets_in_their_accounts_partition(app, mapping: Path) -> None:
    _, report, events = plan_import(app, load_mapping(mapping))
    opened = [e for e in events if isinstance(e, (Deal.Opened, Ticket.Opened))]
    assert report.refused == [] and opened
    assert [partition_of(e.originator_id) for e in opened] == [partition_of(e.customer_id) for e in opened]
    again = [e.originator_id for e in plan_import(app, load_mapping(mapping))[2]
             if isinstance(e, (Deal.Opened, Ticket.Opened))]
    assert again == [e.originator_id for e in opened]  # deterministic


def test_a_deal_imported_before_home_partitions_is_extended_not_imported_twice(
        sqlite_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", folder)
    placed = external_ids.imported_id
    with monkeypatch.context() as old_release:  # ids as they were derived before: the source id's UUID
        old_release.setattr(external_ids, "imported_id", lambda kind, external_id, partition=None: placed(
            kind, external_id))
        run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    legacy = external_ids.external_uuid("deal", "salesforce", "006Dn00000C1dEfGAC")
    assert sqlite_app.get(Deal, legacy).status == "open"
    assert run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml")).written == 0
    (folder / "OpportunityHistory.csv").write_text((folder / "OpportunityHistory.csv").read_text(encoding="utf-8")
                                                  + CLOSED_WON, encoding="utf-8")
    report = run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    assert report.refused == [] and report.events == {"crm.Deal.Won": 1}
    assert sqlite_app.get(Deal, legacy).status == "won"


def test_a_deal_whose_account_a_later_export_changed_is_refused_not_imported_twice(sqlite_app, tmp_path: Path) -> None:
    """Its id would be placed in the other account's partition; the log's deal is found all the same."""
    folder = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", folder)
    run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    deals = sqlite_app.event_count()
    opportunities = folder / "Opportunity.csv"
    text = opportunities.read_text(encoding="utf-8")
    opportunities.write_text(text.replace("006Dn00000C1dEfGAA,Acme anvils 2024,001Dn00000A1bCdEAF",
                                          "006Dn00000C1dEfGAA,Acme anvils 2024,001Dn00000A1bCdEAG"), encoding="utf-8")
    with pytest.raises(CsvImportRefused) as refused:
        run_csv_import(sqlite_app, load_mapping(folder / "mapping.toml"))
    assert sqlite_app.event_count() == deals
    assert any("differs from the log: event 1" in r.reason and "customer_id" in r.reason
               for r in refused.value.report.refused)
