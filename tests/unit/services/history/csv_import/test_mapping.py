"""The mapping file: the samples load; each mistake is one refusal naming the key, before any row is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import DomainError
from services.history.csv_import.mapping import MappingError, load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, MAPPING


@pytest.mark.parametrize("name", ["salesforce/mapping.toml", "salesforce/mapping-opportunities.toml",
                                  "salesforce/mapping-field-history.toml", "hubspot/mapping.toml",
                                  "hubspot/mapping-internal.toml"])
def test_the_sample_mappings_load(name: str) -> None:
    mapping = load_mapping(FIXTURES / name)
    assert all(spec.path.exists() for spec in mapping.files)


def test_a_mapping_resolves_files_against_its_folder_and_keeps_properties_for_later() -> None:
    mapping = load_mapping(FIXTURES / "salesforce" / "mapping.toml")
    history = next(f for f in mapping.files if f.shape == "stage_history")
    assert history.path == FIXTURES / "salesforce" / "OpportunityHistory.csv"
    assert history.properties == {"Product__c": "product"}
    assert (mapping.source, mapping.currency, mapping.timezone.key) == ("salesforce", "USD", "America/New_York")


def test_stage_names_are_found_by_map_by_label_and_by_key_ignoring_case() -> None:
    mapping = load_mapping(FIXTURES / "salesforce" / "mapping.toml")
    assert [mapping.stage_for("sf_sales", name) for name in ("Closed Won", "proposal/price quote", "negotiation",
                                                              " Closed Lost ")] == ["won", "proposal", "negotiation",
                                                                                    "lost"]
    with pytest.raises(DomainError, match="unknown stage name 'Closed Maybe' for pipeline 'sf_sales'"):
        mapping.stage_for("sf_sales", "Closed Maybe")


def test_values_map_case_insensitively_default_when_empty_and_pass_unmapped_values_through() -> None:
    mapping = load_mapping(FIXTURES / "salesforce" / "mapping.toml")
    assert mapping.value("channel", "partner referral") == "partner"
    assert mapping.value("channel", "") == "web"
    assert mapping.value("channel", "Billboard") == "Billboard"  # then refused by the domain, naming it


@pytest.mark.parametrize(("change", "message"), [
    (('timezone = "UTC"', 'timezone = "Mars/Olympus"'), "unknown time zone 'Mars/Olympus'"),
    (('currency = "USD"', 'currency = "XYZ"'), "currency 'XYZ' is not an ISO 4217 currency code"),
    (('source = "crm1"', 'source = "Sales Force"'), "source 'Sales Force' must be lower-case"),
    (('source = "crm1"', ''), "source is required"),
    (('"Won" = "won"', '"Won" = "done"'), "stages.p.'Won' = 'done' is neither a stage of pipeline 'p'"),
    (('[stages.p]', '[stages.q]'), "[stages.q] names a pipeline the mapping does not define"),
    (('shape = "opportunities"', 'shape = "deals"'), "files[1].shape 'deals' is not one of"),
    (('actor = "import:test"', 'actor = "x"\ncolour = "red"'), "unknown key colour at top level"),
    (('{ key = "c", label = "Stage C" }', '{ key = "a", label = "Again" }'), "stage keys must be unique"),
    (('key = "p"', 'key = "P Q"'), "stage key 'P Q' must be lower-case"),
    (('[defaults]', '[defaults'), "is not valid TOML"),
])
def test_each_mistake_in_a_mapping_is_refused_naming_it(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in MAPPING
    (tmp_path / "mapping.toml").write_text(MAPPING.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(MappingError, match="mapping .*mapping.toml: .*" + _escaped(message)):
        load_mapping(tmp_path / "mapping.toml")


def test_an_opportunity_file_must_name_a_defined_pipeline_when_there_are_several(tmp_path: Path) -> None:
    second = '[[pipelines]]\nkey = "q"\nname = "Q"\nstages = [{ key = "x", label = "X" }, { key = "y", label = "Y" }]\n'
    (tmp_path / "mapping.toml").write_text(MAPPING.replace("[stages.p]", second + "[stages.p]"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"files\[1\].pipeline None must name one of the mapping's"):
        load_mapping(tmp_path / "mapping.toml")


def test_a_missing_mapping_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot be read"):
        load_mapping(tmp_path / "nowhere.toml")


def _escaped(message: str) -> str:
    import re
    return re.escape(message)
