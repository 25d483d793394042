"""Forecast categories and probabilities: the rules a deal's standing in a forecast follows.

Why here: a deal's probability and forecast category come from three places — what someone set on the deal
(`Deal.ProbabilityChanged`, `Deal.ForecastCategoryChanged`), else its stage's defaults in the pipeline
definition (`Pipeline.StageForecastSet`), else a default by the stage's position — and a won or lost deal is
always `closed` at 100 % or `omitted` at 0 %. The commands, the forecast read model and `crm import`'s checks
all ask this module, so the rule is said once.

Categories are Salesforce's and HubSpot's: pipeline (may close), best_case (likely), commit (will close),
omitted (left out of the forecast), closed (won). `closed` is never set by hand: only a win makes a deal
closed, so an open deal or an open stage may take any of the other four.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from domain.errors import DomainError

PIPELINE, BEST_CASE, COMMIT, OMITTED, CLOSED = "pipeline", "best_case", "commit", "omitted", "closed"
CATEGORIES = (PIPELINE, BEST_CASE, COMMIT, OMITTED, CLOSED)
OPEN_CATEGORIES = (PIPELINE, BEST_CASE, COMMIT, OMITTED)  # what a person or a stage definition may set


@dataclass(frozen=True)
class StageForecast:
    """A probability (0–100 %) and a forecast category: a stage's defaults, or where a deal stands."""

    probability: int
    category: str

    def to_dict(self) -> dict[str, object]:
        return {"probability": self.probability, "forecast_category": self.category}


WON_FORECAST = StageForecast(100, CLOSED)
LOST_FORECAST = StageForecast(0, OMITTED)


def require_probability(value: object) -> int:
    """A probability in whole percent, 0 to 100."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise DomainError(f"probability must be a whole number of percent from 0 to 100 (got {value!r})")
    return value


def require_category(value: object) -> str:
    """A forecast category a person or a stage may set: `closed` only comes from winning the deal."""
    if value == CLOSED:
        raise DomainError("forecast category 'closed' is only for won deals: win the deal instead")
    if value not in OPEN_CATEGORIES:
        raise DomainError(f"unknown forecast category {value!r}; expected one of: {', '.join(OPEN_CATEGORIES)}")
    return str(value)


def positional_default(position: int, count: int) -> StageForecast:
    """The defaults of an open stage whose definition gives none: the probability rises evenly with the
    stage's place among `count` open stages (1/(n+1) … n/(n+1): the sales pipeline's six give 14, 29, 43,
    57, 71, 86 %); the last open stage is `commit`, the one before it `best_case`, earlier ones `pipeline`."""
    probability = round(100 * (position + 1) / (count + 1))
    category = COMMIT if position == count - 1 else BEST_CASE if position == count - 2 else PIPELINE
    return StageForecast(probability, category)


def stage_default(stages: list[str], defined: dict[str, StageForecast], stage: str) -> StageForecast | None:
    """An open stage's defaults: as defined, else by its position among `stages`; None for a stage not there."""
    if stage in defined:
        return defined[stage]
    if stage not in stages:
        return None
    return positional_default(stages.index(stage), len(stages))


def standing(status: str, default: StageForecast | None, probability: int | None,
             category: str | None) -> StageForecast:
    """Where a deal stands: won → closed 100 %, lost → omitted 0 %; open → what was set on it, else its
    stage's defaults (`pipeline` at 0 % when even those are unknown: a stage the read model never met)."""
    if status == "won":
        return WON_FORECAST
    if status == "lost":
        return LOST_FORECAST
    fallback = default or StageForecast(0, PIPELINE)
    return StageForecast(fallback.probability if probability is None else probability,
                         fallback.category if category is None else category)


def weighted_cents(cents: int, probability: int) -> int:
    """An amount weighted by a probability in percent, to the cent (half-even, as money is rounded elsewhere)."""
    whole, rest = divmod(cents * probability, 100)
    return whole + (1 if rest > 50 or (rest == 50 and whole % 2) else 0)


def attainment_percent(won_cents: int, target_cents: int | None) -> str | None:
    """Closed won as a percentage of the target, one decimal (half-even); None without a (non-zero) target."""
    if not target_cents:
        return None
    return str((Decimal(won_cents) * 100 / Decimal(target_cents)).quantize(Decimal("0.1"), ROUND_HALF_EVEN))
