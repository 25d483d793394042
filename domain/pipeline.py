"""Pipeline definitions: the ordered open stages a deal moves through, plus terminal won/lost."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import CrmAggregate, Meta, require_text
from domain.errors import DomainError
from domain.forecasting import StageForecast, require_category, require_probability, stage_default

WON = "won"
LOST = "lost"
TERMINAL_STAGES = (WON, LOST)
_STAGE_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")

# The pipelines every installation starts with: key -> (name, [(stage key, label)]).
DEFAULT_PIPELINES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "sales": (
        "销售漏斗 / Sales",
        [
            ("lead", "潜在客户获取 / Lead"),
            ("first_contact", "初步接触 / First contact"),
            ("needs_analysis", "需求分析 / Needs analysis"),
            ("proposal", "提供方案 / Proposal"),
            ("negotiation", "商务谈判 / Negotiation"),
            ("contract_signed", "签订合同 / Contract signed"),
        ],
    ),
    "marketing": (  # a lead's way from capture to conversion (won) or disqualification (lost)
        "营销漏斗 / Marketing",
        [
            ("captured", "留资 / Captured"),
            ("assigned", "已分配 / Assigned"),
            ("contacted", "已联系 / Contacted"),
            ("qualified", "合格线索 / Qualified"),
        ],
    ),
    "service": (  # a ticket's way to a satisfied (won) or dissatisfied (lost) rating
        "服务漏斗 / Service",
        [
            ("feedback", "问题反馈 / Feedback"),
            ("in_progress", "处理中 / In progress"),
            ("resolved", "已解决 / Resolved"),
        ],
    ),
}


def pipeline_id(key: str) -> UUID:
    """Pipelines have a stable id derived from their key, so defining one is idempotent."""
    return uuid5(NAMESPACE_URL, f"crm:pipeline:{key}")


def check_stage_key(key: str) -> str:
    """A stage's key, or a pipeline's (`define` and `crm import`'s checks ask this of both)."""
    if not isinstance(key, str) or not _STAGE_KEY.fullmatch(key):
        raise DomainError(f"stage key {key!r} must be lower-case letters, digits or _ (max 40)")
    if key in TERMINAL_STAGES:
        raise DomainError(f"stage key {key!r} is reserved for the terminal stage")
    return key


def stage_index(pipeline: str, stage_keys: list[str], stage: str) -> int:
    """Position of open stage `stage` among a pipeline's `stage_keys`; raises for an unknown one."""
    try:
        return stage_keys.index(stage)
    except ValueError:
        raise DomainError(
            f"unknown stage {stage!r} in pipeline {pipeline!r}; stages are: {', '.join(stage_keys)}"
        ) from None


def check_stages(stages: list[tuple[str, str]]) -> list[str]:
    """A new pipeline's stage keys: at least two, each a valid key, none twice."""
    if len(stages) < 2:
        raise DomainError("a pipeline needs at least two open stages")
    keys = [check_stage_key(k) for k, _ in stages]
    if len(set(keys)) != len(keys):
        raise DomainError(f"stage keys must be unique: {keys}")
    return keys


def check_new_stage(pipeline: str, stage_keys: list[str], stage: str) -> str:
    """A stage to insert: a valid key the pipeline does not have yet."""
    if check_stage_key(stage) in stage_keys:
        raise DomainError(f"stage {stage!r} already exists in pipeline {pipeline!r}")
    return stage


class Pipeline(CrmAggregate):
    """An ordered list of open stages (key + label); deals end in the terminal stages won or lost."""

    class Defined(CrmAggregate.Created):
        key: str
        name: str
        stages: list[dict[str, str]]

        def apply(self, pipeline: Pipeline) -> None:
            pipeline.key = self.key
            pipeline.name = self.name
            pipeline.stages = [dict(s) for s in self.stages]

    class StageRenamed(CrmAggregate.Event):
        stage: str
        label: str

        def apply(self, pipeline: Pipeline) -> None:
            pipeline.stages[pipeline.index(self.stage)]["label"] = self.label

    class StageInserted(CrmAggregate.Event):
        stage: str
        label: str
        position: int

        def apply(self, pipeline: Pipeline) -> None:
            pipeline.stages.insert(self.position, {"key": self.stage, "label": self.label})

    class StageForecastSet(CrmAggregate.Event):
        """A stage's default probability (0–100) and forecast category, for deals that set none themselves
        (`domain.forecasting`); a stage never given them has defaults by its position."""

        stage: str
        probability: int
        forecast_category: str

        def apply(self, pipeline: Pipeline) -> None:
            forecasts = dict(pipeline.stage_forecasts)
            forecasts[self.stage] = StageForecast(self.probability, self.forecast_category)
            pipeline.__dict__["forecasts"] = forecasts

    @classmethod
    def define(cls, key: str, name: str, stages: list[tuple[str, str]], meta: Meta) -> Pipeline:
        check_stage_key(key)
        check_stages(stages)
        return cls._open(
            cls.Defined,
            meta,
            id=pipeline_id(key),
            key=key,
            name=require_text(name, "pipeline name"),
            stages=[{"key": k, "label": require_text(label, "stage label")} for k, label in stages],
        )

    @property
    def stage_keys(self) -> list[str]:
        return [s["key"] for s in self.stages]

    def index(self, stage: str) -> int:
        """Position of an open stage; raises for an unknown one."""
        return stage_index(self.key, self.stage_keys, stage)

    def label(self, stage: str) -> str:
        if stage in TERMINAL_STAGES:
            return {"won": "赢单 / Won", "lost": "输单 / Lost"}[stage]
        return self.stages[self.index(stage)]["label"]

    def rename_stage(self, stage: str, label: str, meta: Meta) -> None:
        if self.label(stage) == label.strip():
            raise DomainError(f"stage {stage!r} is already labelled {label.strip()!r}")
        self._record(self.StageRenamed, meta, stage=stage, label=require_text(label, "stage label"))

    def insert_stage(self, stage: str, label: str, after: str | None, meta: Meta) -> None:
        """Insert a new open stage after `after` (or first when `after` is None)."""
        check_new_stage(self.key, self.stage_keys, stage)
        position = 0 if after is None else self.index(after) + 1
        self._record(
            self.StageInserted, meta, stage=stage, label=require_text(label, "stage label"), position=position
        )

    @property
    def stage_forecasts(self) -> dict[str, StageForecast]:
        """The stages whose forecast defaults were set (a pipeline defined before they existed has none)."""
        return self.__dict__.get("forecasts", {})

    def stage_forecast(self, stage: str) -> StageForecast:
        """An open stage's default probability and category (as set, else by its position)."""
        self.index(stage)
        found = stage_default(self.stage_keys, self.stage_forecasts, stage)
        assert found is not None
        return found

    def set_stage_forecast(self, stage: str, probability: int, category: str, meta: Meta) -> None:
        """Set an open stage's default probability and forecast category; refused when it already has them."""
        self.index(stage)
        wanted = StageForecast(require_probability(probability), require_category(category))
        if self.stage_forecasts.get(stage) == wanted:
            raise DomainError(f"stage {stage!r} already defaults to {probability} % {category}")
        self._record(self.StageForecastSet, meta, stage=stage, probability=probability, forecast_category=category)
