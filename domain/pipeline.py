"""Pipeline definitions: the ordered open stages a deal moves through, plus terminal won/lost."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import CrmAggregate, Meta, require_text
from domain.errors import DomainError

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


MAX_REMINDERS = 10  # thresholds per stage: a reminder a day for ten days is already more than anyone reads
LONGEST_DWELL_DAYS = 3650  # ten years: a longer threshold is a typo


def check_remind_after_days(stage: str, days: Sequence[Any]) -> list[int | float]:
    """A stage's dwell thresholds (`remind_after_days`): positive numbers of days (fractions allowed: 0.5 is
    12 hours), ascending without repeats, at most MAX_REMINDERS; whole numbers kept whole. [] = no reminders."""
    if isinstance(days, (str, bytes)) or not isinstance(days, Sequence):
        raise DomainError(f"remind_after_days of stage {stage!r} must be a list of numbers of days, e.g. [3, 7]")
    if len(days) > MAX_REMINDERS:
        raise DomainError(f"stage {stage!r} may have at most {MAX_REMINDERS} reminder thresholds")
    checked: list[int | float] = []
    for day in days:
        if isinstance(day, bool) or not isinstance(day, (int, float)) or not 0 < day <= LONGEST_DWELL_DAYS:
            raise DomainError(f"remind_after_days of stage {stage!r}: {day!r} is not a number of days "
                              f"above 0 and at most {LONGEST_DWELL_DAYS}")
        checked.append(int(day) if float(day).is_integer() else float(day))
    if checked != sorted(set(checked)):
        raise DomainError(f"remind_after_days of stage {stage!r} must ascend without repeats, e.g. [3, 7]")
    return checked


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
        stages: list[dict[str, Any]]  # key, label; remind_after_days only where a stage has thresholds

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

    class StageRemindersSet(CrmAggregate.Event):
        """A stage's dwell thresholds replaced ([] = none): items entering it from now on, and those in it now,
        are reminded after these many days in it (the reminder process, services/reminder_process.py)."""

        pipeline: str  # the pipeline's key (its id is derived from it, but cannot be read back)
        stage: str
        remind_after_days: list[float]  # whole numbers stored whole (3, not 3.0)

        def apply(self, pipeline: Pipeline) -> None:
            stage = pipeline.stages[pipeline.index(self.stage)]
            stage.pop("remind_after_days", None)
            if self.remind_after_days:
                stage["remind_after_days"] = list(self.remind_after_days)

    @classmethod
    def define(cls, key: str, name: str, stages: list[tuple[str, str]], meta: Meta,
               remind_after_days: Mapping[str, Sequence[Any]] | None = None) -> Pipeline:
        """`remind_after_days`: stage key → dwell thresholds in days, for the stages that have some."""
        check_stage_key(key)
        keys = check_stages(stages)
        reminders = remind_after_days or {}
        if unknown := sorted(set(reminders) - set(keys)):
            raise DomainError(f"remind_after_days names stage(s) {', '.join(unknown)} the pipeline does not have")
        return cls._open(
            cls.Defined,
            meta,
            id=pipeline_id(key),
            key=key,
            name=require_text(name, "pipeline name"),
            stages=[_stage(k, label, reminders.get(k, ())) for k, label in stages],
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

    def remind_after(self, stage: str) -> list[int | float]:
        """The dwell thresholds (days) of an open stage; [] for none, for a terminal or an unknown stage."""
        found = next((s for s in self.stages if s["key"] == stage), None)
        return list(found.get("remind_after_days", ())) if found else []

    def set_stage_reminders(self, stage: str, days: Sequence[Any], meta: Meta) -> None:
        checked = check_remind_after_days(stage, days)
        if self.remind_after(stage) == checked:
            raise DomainError(f"stage {stage!r} already has these reminder thresholds")
        self._record(self.StageRemindersSet, meta, pipeline=self.key, stage=self.stages[self.index(stage)]["key"],
                     remind_after_days=checked)

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



def _stage(key: str, label: str, remind_after_days: Sequence[Any]) -> dict[str, Any]:
    """A stage as the Defined event stores it: thresholds only where there are some, so that definitions
    without them (every one recorded before they existed) read and compare as they always did."""
    stage: dict[str, Any] = {"key": key, "label": require_text(label, "stage label")}
    if days := check_remind_after_days(key, remind_after_days):
        stage["remind_after_days"] = days
    return stage
