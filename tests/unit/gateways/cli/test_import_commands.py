"""`crm import` of CSV exports: the format told by the suffix or --format, --mapping, --dry-run, --json,
--rejects, and an exit code ≠ 0 with the refused rows when anything is refused (nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateways.cli.import_commands import Format, detect_format
from gateways.cli.main import app

runner = CliRunner()
FIXTURES = Path(__file__).parents[4] / "tests" / "fixtures" / "imports"


@pytest.fixture(autouse=True)
def _log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test imports into its own SQLite log."""
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")


@pytest.mark.parametrize(("name", "mapping", "expected"), [
    ("history.jsonl", None, Format.events), ("history.json", None, Format.events), ("map.toml", None, Format.csv),
    ("deals.csv", None, Format.csv), ("deals.txt", Path("map.toml"), Format.csv),
])
def test_the_format_is_told_by_the_suffix_or_a_mapping(name: str, mapping: Path | None, expected: Format) -> None:
    assert detect_format(Path(name), mapping) is expected


def test_dry_run_prints_the_report_as_json_and_writes_nothing() -> None:
    result = runner.invoke(app, ["import", str(FIXTURES / "hubspot" / "mapping.toml"), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dry_run"] is True and report["events_total"] == 25 and report["refused"] == []
    counted = runner.invoke(app, ["import", str(FIXTURES / "hubspot" / "mapping.toml"), "--dry-run"])
    assert "Events would be written: 25" in counted.output


def test_import_then_again_is_a_no_op_with_a_clear_message() -> None:
    first = runner.invoke(app, ["import", str(FIXTURES / "salesforce" / "mapping.toml")])
    assert first.exit_code == 0, first.output
    assert "Imported 42 events." in first.output
    again = runner.invoke(app, ["import", str(FIXTURES / "salesforce" / "mapping.toml")])
    assert again.exit_code == 0, again.output
    assert "Nothing new to import (28 rows already imported)." in again.output


def test_a_csv_file_with_mapping_imports_that_file() -> None:
    result = runner.invoke(app, ["import", str(FIXTURES / "hubspot" / "companies.csv"), "--mapping",
                                 str(FIXTURES / "hubspot" / "mapping.toml")])
    assert result.exit_code == 0, result.output
    assert "companies.csv: 3 rows read" in result.output and "deals.csv" not in result.output


def _flat(output: str) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(output.split())


def _broken_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "hubspot"
    shutil.copytree(FIXTURES / "hubspot", folder, dirs_exist_ok=True)
    deals = folder / "deals.csv"
    deals.write_text(deals.read_text(encoding="utf-8").replace("Presentation Scheduled,", "Demo Booked,"),
                     encoding="utf-8")
    return folder / "mapping.toml"


def test_a_refused_row_exits_non_zero_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(_broken_copy(tmp_path))])
    assert result.exit_code == 1
    assert "deals.csv line 4: unknown stage name 'Demo Booked'" in result.output
    assert "1 row(s) refused; nothing was imported" in _flat(result.output)
    dry = runner.invoke(app, ["import", str(_broken_copy(tmp_path)), "--dry-run", "--json"])
    assert dry.exit_code == 1 and json.loads(dry.stdout)["refused"][0]["line"] == 4
    assert "Events to write: 0" not in runner.invoke(app, ["import", str(tmp_path / "hubspot" / "mapping.toml"),
                                                           "--dry-run"]).output


def test_rejects_imports_the_rest(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["import", str(_broken_copy(tmp_path)), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    assert f"Refused rows written to {rejects}." in result.output
    assert rejects.read_text(encoding="utf-8").splitlines()[1].startswith("9003,Pied Piper compression")


@pytest.mark.parametrize(("change", "message"), [
    (('timezone = "Europe/Berlin"', 'timezone = "Europe/Atlantis"'), "unknown time zone 'Europe/Atlantis'"),
    (('path = "deals.csv"', 'path = "missing.csv"'), "cannot be read as UTF-8 CSV"),
])
def test_a_bad_mapping_exits_non_zero_and_writes_nothing(tmp_path: Path, change, message) -> None:
    mapping = _broken_copy(tmp_path)
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(*change), encoding="utf-8")
    result = runner.invoke(app, ["import", str(mapping)])
    assert result.exit_code == 1
    assert message in _flat(result.output) and "nothing was imported" in _flat(result.output)


def test_a_csv_file_without_its_mapping_is_refused_saying_how() -> None:
    result = runner.invoke(app, ["import", str(FIXTURES / "hubspot" / "deals.csv")])
    assert result.exit_code == 1 and "--mapping MAP.toml" in _flat(result.output)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_mapping_is_refused_as_not_toml_rather_than_as_bad_json(tmp_path, suffix) -> None:
    mapping = tmp_path / f"m{suffix}"
    mapping.write_text("source: salesforce\n", encoding="utf-8")
    (tmp_path / "o.csv").write_text("Id\n1\n", encoding="utf-8")

    for arguments in (["import", str(mapping)], ["import", str(tmp_path / "o.csv"), "--mapping", str(mapping)]):
        result = runner.invoke(app, arguments, env={"COLUMNS": "300"})
        assert result.exit_code == 1, result.output
        assert "mapping files are TOML, not YAML: write it as TOML" in result.output
        assert "JSON" not in result.output


def test_brackets_and_emoji_codes_in_an_error_are_printed_as_they_are(tmp_path) -> None:
    """Rich markup is off in what the CLI prints: "[files.columns]" once vanished, "root:x:0" became an emoji."""
    mapping = tmp_path / "root:x:0 [files.columns].toml"
    mapping.write_text('source = "x"\n', encoding="utf-8")

    result = runner.invoke(app, ["import", str(mapping), "--dry-run"], env={"COLUMNS": "300"})

    assert result.exit_code == 1
    assert "root:x:0 [files.columns]" in result.output, result.output


def test_a_dry_run_that_would_refuse_rows_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", folder)
    history = folder / "OpportunityHistory.csv"
    history.write_text(history.read_text(encoding="utf-8").replace("Closed Lost", "Nowhere"), encoding="utf-8")
    result = runner.invoke(app, ["import", str(folder / "mapping.toml"), "--dry-run"])
    assert result.exit_code == 1 and "would be refused (dry run: nothing was written)" in result.output


def test_a_header_only_export_writes_nothing_and_says_nothing_to_import(tmp_path: Path) -> None:
    folder = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", folder)
    for path in folder.glob("*.csv"):
        path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(folder / "mapping.toml")])
    assert result.exit_code == 1 and "nothing to import" in result.output
    assert "Imported" not in result.output


def test_export_parquet_writes_an_archive_then_only_what_is_new(tmp_path: Path) -> None:
    assert runner.invoke(app, ["import", str(FIXTURES / "hubspot" / "mapping.toml")]).exit_code == 0
    first = runner.invoke(app, ["export", "--parquet", str(tmp_path / "archive")])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Exported 25 events")
    assert list((tmp_path / "archive").glob("month=*/partition=*/part-1-*.parquet"))
    again = runner.invoke(app, ["export", "--parquet", str(tmp_path / "archive")])
    assert again.exit_code == 0 and again.output.startswith("Exported 0 events")


@pytest.mark.parametrize("arguments", [[], ["x.jsonl", "--parquet", "dir"], ["--parquet", "{tmp}"]])
def test_export_refuses_no_target_two_targets_or_a_directory_that_is_not_an_archive(tmp_path, arguments) -> None:
    (tmp_path / "mine.txt").write_text("not an archive")
    result = runner.invoke(app, ["export", *(a.format(tmp=tmp_path) for a in arguments)])
    assert result.exit_code == 1 and "error:" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]  # nothing written
