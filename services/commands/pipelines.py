"""Commands on pipelines: define one, rename a stage's label, insert a stage; the definitions a document asks for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, ValidationError

from domain.errors import DomainError
from domain.pipeline import Pipeline, check_remind_after_days, check_stage_key, check_stages, pipeline_id
from services.commands.command import Change, Command
from services.commands.field_types import Name, StageKey

# A stage's dwell thresholds in days, ascending (domain.pipeline.check_remind_after_days says the rest).
RemindAfterDays = Annotated[list[Annotated[float, Field(gt=0, le=3650)]], Field(
    max_length=10, description="Remind the owner after an item has stayed these many days in the stage, "
                               "e.g. [3, 7] (fractions allowed); none when empty.")]


@dataclass(frozen=True, slots=True)
class Stage:
    __pydantic_config__ = ConfigDict(extra="forbid")  # an unknown field in a stage is refused, as in a body
    key: StageKey
    label: Name
    remind_after_days: RemindAfterDays = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DefinePipeline(Command):
    key: StageKey
    name: Name
    stages: Annotated[list[Stage], Field(min_length=2, max_length=50)]


@dataclass(frozen=True, slots=True)
class PipelineChange(Change):
    """A pipeline is addressed by its key (its id is derived from it)."""

    aggregate, address = Pipeline, "key"
    key: str

    @property
    def aggregate_id(self) -> UUID:
        return pipeline_id(self.key)


@dataclass(frozen=True, slots=True)
class RenameStage(PipelineChange):
    """Rename a stage's label (its key never changes)."""

    stage: str
    label: Name


@dataclass(frozen=True, slots=True)
class InsertStage(PipelineChange):
    stage: StageKey
    label: Name
    after: Annotated[StageKey | None, Field(description="Insert after this stage; first when absent.")] = None


@dataclass(frozen=True, slots=True)
class SetStageReminders(PipelineChange):
    """Replace a stage's dwell thresholds (an empty list removes them)."""

    stage: str
    remind_after_days: RemindAfterDays


class PipelineDocumentError(ValueError):
    """A pipelines document (`crm pipeline define --file`) that is not a list of valid definitions."""


def pipelines_of_document(document: Mapping[str, Any]) -> list[DefinePipeline]:
    """The DefinePipeline commands a parsed document asks for, in its order: its `[[pipeline]]` tables, each
    with `key`, `name` and `stages` (an array of `{key, label}` tables). Every field is checked as an HTTP
    body is (pydantic, from the command's annotations), and the pipeline rules of domain/pipeline.py before
    anything is written; raises PipelineDocumentError naming each refused pipeline and field."""
    tables = document.get("pipeline")
    unknown = sorted(set(document) - {"pipeline"})
    if unknown or not isinstance(tables, list) or not tables:
        raise PipelineDocumentError("expected one or more [[pipeline]] tables (key, name, stages = "
                                    f"[{{key, label}}, …]){f'; unknown: {unknown}' if unknown else ''}")
    commands, problems = [], []
    for number, table in enumerate(tables, 1):
        where = f"pipeline {number}" + (f" ({table['key']})" if isinstance(table, dict) and "key" in table else "")
        try:
            commands.append(_define_command(table))
        except (ValidationError, DomainError, PipelineDocumentError) as error:
            problems.append(f"{where}: {_sentence(error)}")
    keys = [command.key for command in commands]
    problems += [f"pipeline {key!r} is defined twice" for key in sorted({k for k in keys if keys.count(k) > 1})]
    if problems:
        raise PipelineDocumentError("; ".join(problems))
    return commands


def _define_command(table: Any) -> DefinePipeline:
    if not isinstance(table, dict):
        raise PipelineDocumentError("a [[pipeline]] table is expected")
    if unknown := sorted(set(table) - {"key", "name", "stages"}):
        raise PipelineDocumentError(f"unknown field(s) {', '.join(unknown)}; expected key, name, stages")
    from pydantic import TypeAdapter  # here: a query's start need not build the adapter's machinery

    command = TypeAdapter(DefinePipeline).validate_python(table)
    check_stage_key(command.key)
    check_stages([(stage.key, stage.label) for stage in command.stages])
    for stage in command.stages:
        check_remind_after_days(stage.key, stage.remind_after_days)
    return command


def _sentence(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'table'}: {e['msg']}" for e in error.errors())
    return str(error)
