"""Commands of forecasting: a deal's expected close, probability and category; a stage's forecast defaults;
targets (quotas) per owner or team and period; the team an owner belongs to.

A target and an owner's team are addressed by what names them (scope, name, period; owner), their ids derived
from it, and set whether or not they exist yet: "set the Q1 target of 李娜 to 500000" is one command either
way. If-Match still pins the version a caller saw (0 for one not set yet is the same as none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from domain.targets import OwnerTeam, Target, owner_team_id, target_id
from services.commands.command import Change
from services.commands.deals import DealChange
from services.commands.field_types import (NO_NUL, Amount, Category, Currency, Day, Label, Name, Probability, StageKey,
                                          Text)
from services.commands.pipelines import PipelineChange

PeriodLabel = Annotated[str, StringConstraints(max_length=10, pattern=NO_NUL),
                        Field(description="A month (2026-03) or a quarter (2026-Q1) of the installation's zone.")]


@dataclass(frozen=True, slots=True)
class ChangeExpectedClose(DealChange):
    expected_close: Day
    reason: Text = ""


@dataclass(frozen=True, slots=True)
class ChangeProbability(DealChange):
    """The deal's own probability; null goes back to its stage's default."""

    probability: Probability | None
    reason: Text = ""


@dataclass(frozen=True, slots=True)
class ChangeForecastCategory(DealChange):
    """The deal's own forecast category; null goes back to its stage's default."""

    forecast_category: Category | None
    reason: Text = ""


@dataclass(frozen=True, slots=True)
class SetStageForecast(PipelineChange):
    """A stage's default probability and forecast category, for deals that set none themselves."""

    stage: StageKey
    probability: Probability
    forecast_category: Category


@dataclass(frozen=True, slots=True)
class SetTarget(Change):
    """Set (or change) the target of an owner or a team for a month or a quarter."""

    aggregate, address = Target, "period"  # addressed by scope, name and period together (see aggregate_id)
    scope: Annotated[str, StringConstraints(pattern=r"^(owner|team)$")]
    name: Name
    period: PeriodLabel
    amount: Amount
    currency: Currency = "CNY"
    reason: Text = ""

    @property
    def aggregate_id(self) -> UUID:
        return target_id(self.scope, self.name.strip(), self.period.strip())


@dataclass(frozen=True, slots=True)
class AssignTeam(Change):
    """Put an owner in a team from now on ("" : in none)."""

    aggregate, address = OwnerTeam, "owner"
    owner: Name
    team: Label
    reason: Text = ""

    @property
    def aggregate_id(self) -> UUID:
        return owner_team_id(self.owner.strip())
