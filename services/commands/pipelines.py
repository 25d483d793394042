"""Commands on pipelines: define one, rename a stage's label, insert a stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from pydantic import ConfigDict, Field

from domain.pipeline import Pipeline, pipeline_id
from services.commands.command import Change, Command
from services.commands.field_types import Name, StageKey


@dataclass(frozen=True, slots=True)
class Stage:
    __pydantic_config__ = ConfigDict(extra="forbid")  # an unknown field in a stage is refused, as in a body
    key: StageKey
    label: Name


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
