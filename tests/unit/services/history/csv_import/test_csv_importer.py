"""The whole CSV import on SQLite: written through import_history, all or nothing; a second run is a no-op;
refused rows refuse the import unless --rejects takes them; the lines' order lets every reference point back."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from domain.deal import Deal
from domain.pipeline import Pipeline, pipeline_id
from services.event_envelope import event_type
from services.history.csv_import.csv_importer import (CsvImportRefused, FileRefused, mapping_for, ordered_events,
                                                      plan_import, run_csv_import)
from services.history.csv_import.mapping import MappingError, load_mapping
from tests.unit.services.history.csv_import.conftest import DEALS_HEADER, FIXTURES, deals, logged_id


@pytest.mark.parametrize("name", ["salesforce/mapping.toml", "hubspot/mapping.toml",
                                  "salesforce/mapping-field-history.toml"])
def test_a_sample_export_is_written_and_a_second_import_writes_nothing(sqlite_app, name: str) -> None:
    mapping = load_mapping(FIXTURES / name)
    report = run_csv_import(sqlite_app, mapping)
    assert report.refused == [] and report.written == sum(report.events.values()) == sqlite_app.event_count()
    again = run_csv_import(sqlite_app, mapping)
    assert (again.written, again.events, sqlite_app.event_count()) == (0, {}, report.written)
    assert sum(again.skipped.values()) >= sum(report.rows_read.values()) - 1  # all but a member who did not respond


def test_a_dry_run_writes_nothing_and_reports_what_would_be(sqlite_app) -> None:
    report = run_csv_import(sqlite_app, load_mapping(FIXTURES / "hubspot" / "mapping.toml"), dry_run=True)
    assert sqlite_app.event_count() == 0
    data = report.as_dict()
    assert data["dry_run"] is True and data["events_written"] == 0
    assert data["rows_read"] == {"companies.csv": 3, "deals.csv": 4, "tickets.csv": 2}
    assert data["events"]["crm.Deal.Opened"] == 4 and data["events_total"] == 25
    assert data["date_range"] == {"first": "2024-01-02T08:15:00Z", "last": "2024-03-10T08:00:00Z"}
    assert data["stages"] == {"hs_sales": {"appointmentscheduled": 4, "qualifiedtobuy": 3, "presentationscheduled": 3,
                                           "decisionmakerboughtin": 1, "contractsent": 2, "won": 1, "lost": 1}}
    assert data["refused"] == []
    text = "\n".join(report.lines())
    assert "dry run: nothing written" in text and "deals.csv: 4 rows read" in text
    assert "Deals per stage in pipeline hs_sales: appointmentscheduled 4, qualifiedtobuy 3" in text


BAD = "D2,Bad,A1,Nowhere,1,USD,2024-01-02T00:00:00Z,,bo,,,,"
GOOD = "D1,Good,A1,Stage A,1,USD,2024-01-02T00:00:00Z,,bo,,,,"


def test_one_refused_row_refuses_the_import_and_writes_nothing(sqlite_app, export) -> None:
    with pytest.raises(CsvImportRefused, match="1 row.* refused; nothing was imported") as refused:
        run_csv_import(sqlite_app, export(deals(GOOD, BAD)))
    assert sqlite_app.event_count() == 0
    (row,) = refused.value.report.refused
    assert (row.file, row.line) == ("deals.csv", 3)
    assert "deals.csv line 3: unknown stage name 'Nowhere'" in "\n".join(refused.value.report.lines())


def test_rejects_takes_the_refused_rows_and_the_rest_is_imported(sqlite_app, export, tmp_path: Path) -> None:
    mapping = export(deals(GOOD, BAD))
    report = run_csv_import(sqlite_app, mapping, rejects=tmp_path / "rejects.csv")
    assert report.rejects == [str(tmp_path / "rejects.csv")]
    with (tmp_path / "rejects.csv").open(encoding="utf-8", newline="") as rejected:
        (row,) = list(csv.DictReader(rejected))
    assert (row["Id"], row["Name"], row["line"]) == ("D2", "Bad", "3")
    assert row["reason"].startswith("unknown stage name 'Nowhere'")
    assert sqlite_app.get(Deal, logged_id(sqlite_app, "deal", "crm1", "D1")).title == "Good"
    # the user fixes the rejected row in the original file and imports it again: only the fixed row is new
    (tmp_path / "deals.csv").write_text((tmp_path / "deals.csv").read_text().replace("Nowhere", "Stage B"))
    again = run_csv_import(sqlite_app, load_mapping(tmp_path / "mapping.toml"))
    assert again.events == {"crm.Deal.Opened": 1} and again.skipped == {"accounts.csv": 2, "deals.csv": 1}


def test_rejects_of_several_files_go_to_one_file_each(sqlite_app, export, tmp_path: Path) -> None:
    files = deals(GOOD, "D3,Three,A3,Stage A,1,USD,2024-01-02T00:00:00Z,,bo,,,,")
    files["accounts.csv"] += "A3,,2024-01-01T00:00:00Z\n"
    report = run_csv_import(sqlite_app, export(files), rejects=tmp_path / "rejects.csv")
    assert sorted(Path(p).name for p in report.rejects) == ["rejects-accounts.csv", "rejects-deals.csv"]


def test_a_pipeline_already_in_the_log_is_used_not_defined_again(sqlite_app, export) -> None:
    mapping = export(deals(GOOD))
    run_csv_import(sqlite_app, mapping)
    mapping = export(deals(GOOD, "D5,Five,A2,Stage C,1,USD,2024-01-02T00:00:00Z,,bo,,,,"))
    report = run_csv_import(sqlite_app, mapping)
    assert "crm.Pipeline.Defined" not in report.events
    assert sqlite_app.get(Pipeline, pipeline_id("p")).stage_keys == ["a", "b", "c"]


def test_a_pipeline_in_the_log_without_a_mapped_stage_is_refused(sqlite_app, export, tmp_path: Path) -> None:
    from domain.base import Meta
    sqlite_app.save_new(Pipeline.define("p", "P", [("a", "A"), ("b", "B")], Meta(actor="setup")))
    with pytest.raises(MappingError, match="pipeline 'p' is already defined without stage.*c"):
        run_csv_import(sqlite_app, export(deals(GOOD)))


def test_creations_come_first_by_kind_then_the_rest_in_business_time(app) -> None:
    session, _, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    kinds = [event_type(e).split(".")[1] for e in events if e.originator_version == 1]
    assert kinds == sorted(kinds, key=["Pipeline", "Campaign", "Customer", "Lead", "Deal", "Ticket"].index)
    rest = [e.occurred_at for e in events if e.originator_version > 1]
    assert rest == sorted(rest)
    assert events == ordered_events(session)


def test_a_csv_file_with_its_mapping_imports_only_that_file(app, tmp_path: Path) -> None:
    mapping = mapping_for(FIXTURES / "hubspot" / "mapping.toml", FIXTURES / "hubspot" / "companies.csv")
    assert [f.name for f in mapping.files] == ["companies.csv"]
    with pytest.raises(MappingError, match="no \\[\\[files\\]\\] entry for other.csv"):
        mapping_for(FIXTURES / "hubspot" / "mapping.toml", tmp_path / "other.csv")
    single = mapping_for(FIXTURES / "hubspot" / "mapping-internal.toml", tmp_path / "renamed.csv")
    assert single.files[0].path == tmp_path / "renamed.csv"


def test_an_unknown_role_in_a_files_columns_is_a_mapping_error(app, export) -> None:
    from tests.unit.services.history.csv_import.conftest import MAPPING
    mapping = export(deals(GOOD), MAPPING.replace('owner = "Owner"', 'seller = "Owner"'))
    with pytest.raises(MappingError, match="unknown role\\(s\\) seller for shape opportunities"):
        plan_import(app, mapping)


def test_the_installations_vocabularies_rule_the_rows(sqlite_app, export) -> None:
    """Rows are checked against the installation's vocabularies (part vocab), not the defaults: a retired
    channel refuses the rows that carry it, one the installation added is accepted."""
    from domain.base import Meta
    from services.commands import AddVocabularyValue, RetireVocabularyValue
    from tests.unit.services.history.csv_import.conftest import MAPPING
    sqlite_app.retire_vocabulary_value(RetireVocabularyValue("acquisition_channel", "web"), Meta(actor="admin"))
    with pytest.raises(CsvImportRefused) as refused:
        run_csv_import(sqlite_app, export(deals(GOOD)))
    assert "unknown acquisition channel 'web'" in "\n".join(refused.value.report.lines())

    sqlite_app.add_vocabulary_value(AddVocabularyValue("acquisition_channel", "直播"), Meta(actor="admin"))
    report = run_csv_import(sqlite_app, export(deals(GOOD), MAPPING.replace('channel = "web"', 'channel = "直播"')))
    assert report.refused == [] and report.events["crm.Customer.Registered"] == 2


# --- review12 finding 7 and P2 10, 12, 13 ---

def test_rows_with_too_few_or_too_many_cells_are_refused_with_line_and_counts(sqlite_app, export) -> None:
    with pytest.raises(CsvImportRefused) as refused:
        run_csv_import(sqlite_app, export(deals(GOOD, "D2,Acme, Inc,A1,Stage A,1,USD,2024-01-02T00:00:00Z,,bo,,,,",
                                                "D3,Cut,A1,Stage A")))
    assert [(r.line, r.reason) for r in refused.value.report.refused] == [
        (3, "has 14 cells, the header 13 (an unquoted comma, or a cut-off line?)"),
        (4, "has 4 cells, the header 13 (an unquoted comma, or a cut-off line?)")]


def test_header_only_files_write_nothing_not_even_a_pipeline(sqlite_app, export) -> None:
    with pytest.raises(FileRefused, match="no file of the mapping has a row .*nothing to import"):
        run_csv_import(sqlite_app, export({"accounts.csv": "Id,Name,Created\n", "deals.csv": DEALS_HEADER}))
    assert sqlite_app.event_count() == 0


def test_a_pipeline_alone_is_not_written(sqlite_app, export, tmp_path: Path) -> None:
    report = run_csv_import(sqlite_app, export({"accounts.csv": "Id,Name,Created\nA1,,2024-01-01T00:00:00Z\n",
                                                "deals.csv": DEALS_HEADER}), rejects=tmp_path / "rej.csv")
    assert (report.events, report.written, sqlite_app.event_count()) == ({}, 0, 0)


@pytest.mark.parametrize("name", ["deals.csv", "mapping.toml", "x/../deals.csv"])
def test_rejects_must_not_overwrite_a_file_the_mapping_reads(sqlite_app, export, tmp_path: Path, name: str) -> None:
    mapping = export(deals(GOOD, BAD))
    (tmp_path / "x").mkdir()
    with pytest.raises(FileRefused, match="would overwrite"):
        run_csv_import(sqlite_app, mapping, rejects=tmp_path / name)
    assert sqlite_app.event_count() == 0 and "Nowhere" in (tmp_path / "deals.csv").read_text()


def test_an_imported_pipeline_is_dated_at_the_earliest_record(app) -> None:
    _, _, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    (defined,) = [e for e in events if event_type(e) == "crm.Pipeline.Defined"]
    assert defined.occurred_at == min(e.occurred_at for e in events) and defined.occurred_at.year == 2024
