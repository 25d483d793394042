"""`crm import`'s checks of a pipeline's events: its id derives from its key (as `domain.pipeline.pipeline_id`
derives it), and renamed and inserted stages against its stages (`stage_index`, `check_new_stage`)."""

from __future__ import annotations

from uuid import UUID

from domain.pipeline import Pipeline, check_new_stage, pipeline_id, stage_index
from services.history.rules.facts import pipeline_key
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _defined(rules: Engine, pipeline: Tracked, key: str, stages: list[str]) -> None:
    subject = rules.subject
    if pipeline_key(key) != subject:
        raise Refusal("key", f"pipeline {key!r} has the id {pipeline_id(key)}, derived from its key, "
                             f"not {UUID(int=subject)}")
    pipeline.pipeline, pipeline.stages = key, list(stages)


def _stage_renamed(rules: Engine, pipeline: Tracked, stage: str) -> None:
    """A stage renamed: one the pipeline has."""
    stage_index(pipeline.pipeline, pipeline.stages, stage)


def _stage_reminders_set(rules: Engine, pipeline: Tracked, key: str, stage: str) -> None:
    """Thresholds of a stage the pipeline has, naming the pipeline they are stored under (readers of the
    event take the pipeline from the field, the domain from the subject: the two must agree)."""
    if key != pipeline.pipeline:
        raise Refusal("pipeline", f"the event is pipeline {pipeline.pipeline!r}'s, not {key!r}'s")
    stage_index(pipeline.pipeline, pipeline.stages, stage)


def _stage_inserted(rules: Engine, pipeline: Tracked, stage: str, position: int) -> None:
    check_new_stage(pipeline.pipeline, pipeline.stages, stage)
    if not 0 <= position <= len(pipeline.stages):
        raise Refusal("position", f"position {position} is outside the pipeline's {len(pipeline.stages)} stages")
    pipeline.stages.insert(position, stage)


def _stage_forecast_set(rules: Engine, pipeline: Tracked, stage: str) -> None:
    stage_index(pipeline.pipeline, pipeline.stages, stage)


RULES: dict[type, Rule] = {
    Pipeline.StageForecastSet: _stage_forecast_set,
    Pipeline.Defined: _defined,
    Pipeline.StageRenamed: _stage_renamed,
    Pipeline.StageRemindersSet: _stage_reminders_set,
    Pipeline.StageInserted: _stage_inserted,
}
