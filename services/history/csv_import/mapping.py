"""The mapping file of a CSV import: which export files hold what, and what their columns and values mean.

TOML, read with the standard library's `tomllib` (no dependency; YAML would need one and adds nothing a
mapping needs). The whole file is checked before any row is read, so a typo in the mapping is one clear
refusal rather than thousands of refused rows. The format, with an example, is in
`tests/fixtures/imports/salesforce/mapping.toml` and the module docstring of `csv_importer`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain import money
from domain.errors import DomainError
from domain.external_ids import check_source
from domain.pipeline import LOST, TERMINAL_STAGES, WON, check_stage_key, check_stages
from domain.vocabulary import UNKNOWN

SHAPES = ("accounts", "contacts", "leads", "opportunities", "stage_history", "campaigns", "campaign_members",
          "tickets")
VALUE_MAPS = ("channel", "priority", "lead_status", "ticket_status", "response", "ticket_channel")
TOP_KEYS = {"source", "timezone", "currency", "actor", "date_formats", "defaults", "pipelines", "stages", "values",
            "files", "campaigns"}
FILE_KEYS = {"path", "shape", "pipeline", "columns", "properties", "stage_entered", "stage_entered_pattern",
             "stage_exited", "stage_exited_pattern", "details", "create_customers"}
# Defaults for what real exports often lack: `unknown`, the explicit value of a dimension real data lacks.
DEFAULTS = {"region": UNKNOWN, "industry": UNKNOWN, "channel": UNKNOWN, "loss_reason": UNKNOWN,
            "owner": "unassigned", "priority": "normal", "ticket_channel": "email", "response": "reply",
            "resolution": "resolved (imported)", "lead_name": "(no name)"}


class MappingError(ValueError):
    """The mapping file is unusable; nothing was read or written."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"mapping {path}: {problem}")
        self.path, self.problem = path, problem


@dataclass(frozen=True)
class PipelineSpec:
    key: str
    name: str
    stages: list[tuple[str, str]]  # (stage key, label), in order

    @property
    def stage_keys(self) -> list[str]:
        return [key for key, _ in self.stages]


@dataclass(frozen=True)
class FileSpec:
    """One export file: its shape, which column plays which role, and the shape's options."""

    path: Path  # resolved against the mapping file's folder
    shape: str
    columns: dict[str, str]  # role → column name in the file
    pipeline: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)  # column → property name, set on each record at its creation

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Mapping:
    path: Path
    source: str
    timezone: ZoneInfo
    currency: str
    actor: str
    date_formats: tuple[str, ...]
    defaults: dict[str, str]
    pipelines: dict[str, PipelineSpec]
    stages: dict[str, dict[str, str]]  # pipeline → source stage name (case-folded) → stage key, won or lost
    stage_names: dict[str, list[str]]  # pipeline → every source stage name as written (for column patterns)
    values: dict[str, dict[str, str]]  # value map → source value (case-folded) → CRM value
    files: list[FileSpec]
    campaigns: list[dict[str, Any]]

    def stage_for(self, pipeline: str, name: str) -> str:
        """The stage key (or won/lost) a source stage name means; DomainError for one the mapping lacks."""
        known = self.stages.get(pipeline, {})
        found = known.get(name.strip().casefold())
        if found is None:
            raise DomainError(f"unknown stage name {name!r} for pipeline {pipeline!r}; the mapping's [stages."
                              f"{pipeline}] knows: {', '.join(sorted(known)) or 'none'}")
        return found

    def value(self, kind: str, raw: str) -> str:
        """A source value through value map `kind`; the default when empty; the value itself when unmapped."""
        text = raw.strip()
        if not text:
            return self.defaults[kind]
        return self.values.get(kind, {}).get(text.casefold(), text)


YAML_SUFFIXES = (".yaml", ".yml")  # the issue names TOML or YAML; a YAML file gets a reason, not a parse error


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; MappingError says what is wrong (with the TOML key)."""
    if path.suffix.lower() in YAML_SUFFIXES:
        raise MappingError(path, "mapping files are TOML, not YAML: write it as TOML (the same keys; an example is "
                                 "tests/fixtures/imports/salesforce/mapping.toml)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(path, f"cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(path, f"is not valid TOML ({error})") from None
    try:
        return _mapping(path, raw)
    except DomainError as error:
        raise MappingError(path, str(error)) from None


def _mapping(path: Path, raw: dict[str, Any]) -> Mapping:
    _no_unknown(raw, TOP_KEYS, "top level")
    pipelines = {spec.key: spec for spec in (_pipeline(p, i) for i, p in enumerate(_list(raw, "pipelines")))}
    defaults = {**DEFAULTS, **{k: _text(v, f"defaults.{k}") for k, v in _table(raw, "defaults").items()}}
    return Mapping(
        path=path,
        source=check_source(_required(raw, "source")),
        timezone=_zone(_required(raw, "timezone")),
        currency=money.currency(_text(raw.get("currency", "CNY"), "currency")),
        actor=_text(raw.get("actor", f"import:{raw.get('source', '')}"), "actor"),
        date_formats=tuple(_text(f, "date_formats") for f in raw.get("date_formats", [])),
        defaults=defaults,
        pipelines=pipelines,
        stages=_stage_maps(_table(raw, "stages"), pipelines),
        stage_names=_stage_names(_table(raw, "stages"), pipelines),
        values=_value_maps(_table(raw, "values")),
        files=[_file(path.parent, f, i, pipelines) for i, f in enumerate(_list(raw, "files"))],
        campaigns=_list(raw, "campaigns"),
    )


def _no_unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(table.keys() - allowed)
    if unknown:
        raise DomainError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} at {where}; "
                          f"expected: {', '.join(sorted(allowed))}")


def _required(table: dict[str, Any], key: str, where: str = "") -> str:
    if key not in table:
        raise DomainError(f"{where + '.' if where else ''}{key} is required")
    return _text(table[key], f"{where + '.' if where else ''}{key}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DomainError(f"{what} must be a non-empty string, not {value!r}")
    return value.strip()


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise DomainError(f"{key} must be a table ([{key}])")
    return value


def _list(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise DomainError(f"{key} must be an array of tables ([[{key}]])")
    return value


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or UTC") from None


def _pipeline(raw: dict[str, Any], index: int) -> PipelineSpec:
    where = f"pipelines[{index}]"
    _no_unknown(raw, {"key", "name", "stages"}, where)
    stages = raw.get("stages")
    if not isinstance(stages, list) or not all(isinstance(s, dict) and {"key", "label"} <= s.keys() for s in stages):
        raise DomainError(f"{where}.stages must be a list of {{ key = ..., label = ... }}")
    pairs = [(str(s["key"]), _text(s["label"], f"{where}.stages.label")) for s in stages]
    check_stages(pairs)
    return PipelineSpec(check_stage_key(_required(raw, "key", where)), _required(raw, "name", where), pairs)


def _stage_maps(raw: dict[str, Any], pipelines: dict[str, PipelineSpec]) -> dict[str, dict[str, str]]:
    """[stages.<pipeline>]: source stage name → stage key, "won" or "lost"; the pipeline's own stage keys
    and labels are understood too, so a mapping need only list the names that differ."""
    maps: dict[str, dict[str, str]] = {}
    for key, spec in pipelines.items():
        names = {k.casefold(): k for k in spec.stage_keys} | {label.casefold(): k for k, label in spec.stages}
        maps[key] = names | {WON: WON, LOST: LOST}
    for key, table in raw.items():
        if key not in pipelines:
            raise DomainError(f"[stages.{key}] names a pipeline the mapping does not define in [[pipelines]]")
        if not isinstance(table, dict):
            raise DomainError(f"stages.{key} must be a table of source stage name = stage key")
        for name, target in table.items():
            if target not in pipelines[key].stage_keys and target not in TERMINAL_STAGES:
                raise DomainError(f"stages.{key}.{name!r} = {target!r} is neither a stage of pipeline {key!r} "
                                  f"({', '.join(pipelines[key].stage_keys)}) nor won or lost")
            maps[key][name.strip().casefold()] = target
    return maps


def _stage_names(raw: dict[str, Any], pipelines: dict[str, PipelineSpec]) -> dict[str, list[str]]:
    return {key: list(dict.fromkeys([*spec.stage_keys, *(label for _, label in spec.stages), *raw.get(key, {})]))
            for key, spec in pipelines.items()}


def _value_maps(raw: dict[str, Any]) -> dict[str, dict[str, str]]:
    _no_unknown(raw, set(VALUE_MAPS), "[values]")
    maps: dict[str, dict[str, str]] = {}
    for kind, table in raw.items():
        if not isinstance(table, dict):
            raise DomainError(f"values.{kind} must be a table of source value = CRM value")
        maps[kind] = {name.strip().casefold(): _text(value, f"values.{kind}.{name}") for name, value in table.items()}
    return maps


def _file(folder: Path, raw: dict[str, Any], index: int, pipelines: dict[str, PipelineSpec]) -> FileSpec:
    where = f"files[{index}]"
    _no_unknown(raw, FILE_KEYS, where)
    shape = _required(raw, "shape", where)
    if shape not in SHAPES:
        raise DomainError(f"{where}.shape {shape!r} is not one of: {', '.join(SHAPES)}")
    pipeline = raw.get("pipeline")
    if shape in ("opportunities", "stage_history"):
        if pipeline is None and len(pipelines) == 1:
            pipeline = next(iter(pipelines))
        if pipeline not in pipelines:
            raise DomainError(f"{where}.pipeline {pipeline!r} must name one of the mapping's [[pipelines]] "
                              f"({', '.join(pipelines) or 'none defined'})")
    columns = _table(raw, "columns")
    if not all(isinstance(v, str) for v in columns.values()):
        raise DomainError(f"{where}.columns must map roles to column names (strings)")
    options = {k: v for k, v in raw.items() if k not in {"path", "shape", "pipeline", "columns", "properties"}}
    return FileSpec(folder / _required(raw, "path", where), shape, dict(columns), pipeline, options,
                    {str(k): str(v) for k, v in _table(raw, "properties").items()})
