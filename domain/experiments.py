"""A/B tests of marketing variants (copy, channel, landing page, offer): is a variant's conversion rate really
different from the control's, how sure can one be, and how much more data is needed before saying so.

Why a library: the tests are statsmodels' and scipy's (two-proportion z-test, Newcombe's interval for a
difference of proportions, Pearson's chi-square over all arms, the power analysis), not hand-written
fitting; only the Bayesian probability-to-beat is the closed form of two Beta posteriors (Evan Miller's sum,
exact, with scipy's log-Beta), cheaper and steadier than sampling.

Why a verdict and not only a p-value: a marketer reads "B wins" off a dashboard. A winner is declared only
when the difference is significant at `alpha` *and* each arm has reached the sample size that detects the
minimum effect worth acting on (`min_effect`, default: the difference observed) with the wanted power; before
that the answer is "not enough data" with the number of exposures still needed per arm — the usual way a
test peeked at daily calls a false winner. Without a minimum effect this asks for z ≥ 2.80 (1.96 + 0.84)
rather than 1.96: 20 % against 25 % of 1,000 each (p = 0.007) still needs 92 more per arm. Arms whose counts make the normal approximation unfit (fewer than
`MIN_EACH` conversions or non-conversions) are "not enough data" whatever the p-value says.

Why corrected p-values with more than two variants: each variant against the control at 0.05 gives a false winner
somewhere in one test of seven with three variants (1 − 0.95³). `compare_all` decides at a family-wise error rate
of `alpha` with Holm's step-down (statsmodels' `multipletests`), which is uniformly more powerful than Bonferroni;
each comparison keeps its raw p-value beside the adjusted one. The family is the variants with a p-value (both
arms fit); with one such variant both are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

ALPHA = 0.05  # two-sided significance level
POWER = 0.8  # the chance of detecting the minimum effect when it is there
MIN_EACH = 5  # conversions and non-conversions per arm below which the z and chi-square tests are unfit

NOT_ENOUGH_DATA, VARIANT_WINS, CONTROL_WINS, NO_DIFFERENCE = "not enough data", "variant wins", "control wins", \
    "no difference detected"


@dataclass(frozen=True)
class Arm:
    """One variant's (or the control's) exposures and conversions to one step of its funnel."""

    name: str
    exposures: int
    conversions: int

    def __post_init__(self) -> None:
        if not 0 <= self.conversions <= self.exposures:
            raise ValueError(f"variant {self.name!r}: conversions ({self.conversions}) must be between 0 and its "
                             f"exposures ({self.exposures})")

    @property
    def rate(self) -> float | None:
        return self.conversions / self.exposures if self.exposures else None

    @property
    def fit(self) -> bool:
        return min(self.conversions, self.exposures - self.conversions) >= MIN_EACH


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: the difference of rates with its 95 % interval, the tests, the
    probability that the variant's true rate is higher, the exposures needed per arm, and the verdict."""

    control: Arm
    variant: Arm
    difference: float | None  # variant's rate − control's
    interval: tuple[float, float] | None  # (1 − alpha) interval of the difference, Newcombe's hybrid score
    p_value: float | None  # two-sided, two-proportion z-test (pooled variance)
    probability_to_beat: float | None  # P(variant's rate > control's), uniform Beta(1, 1) priors
    needed_per_arm: int | None  # exposures per arm to detect `min_effect` (or the observed difference)
    verdict: str
    reason: str
    p_adjusted: float | None = None  # Holm-adjusted over the variants compared with one control (`compare_all`)

    def to_dict(self) -> dict[str, object]:
        return {"control": self.control.name, "variant": self.variant.name, "difference": self.difference,
                "interval": list(self.interval) if self.interval else None, "p_value": self.p_value,
                "p_adjusted": self.p_adjusted if self.p_adjusted is not None else self.p_value,
                "probability_to_beat": self.probability_to_beat, "needed_per_arm": self.needed_per_arm,
                "verdict": self.verdict, "reason": self.reason}


def compare(control: Arm, variant: Arm, alpha: float = ALPHA, power: float = POWER,
            min_effect: float | None = None) -> Comparison:
    """The variant against the control (`min_effect`: the smallest absolute difference of rates worth
    acting on; None takes the difference observed)."""
    if control.rate is None or variant.rate is None:
        return _unfit(control, variant, "a variant with no exposures yet")
    difference = variant.rate - control.rate
    needed = needed_per_arm(control.rate, min_effect if min_effect is not None else difference, alpha, power)
    p_value, interval = _z_test(control, variant, alpha)
    beat = probability_to_beat(control, variant)
    verdict, reason = _verdict(control, variant, p_value, needed, alpha)
    return Comparison(control, variant, difference, interval, p_value, beat, needed, verdict, reason)


def compare_all(control: Arm, variants: list[Arm], alpha: float = ALPHA, power: float = POWER,
                min_effect: float | None = None) -> list[Comparison]:
    """Each variant against the control, each verdict at a family-wise error rate of `alpha`: Holm's step-down
    over the comparisons that have a p-value — both arms fit (`MIN_EACH`), whether or not they reached their
    sample size. The others are "not enough data" whatever the rest say, and do not enlarge the family: a
    variant with too few conversions would otherwise make every other verdict stricter for a test never run."""
    from statsmodels.stats.multitest import multipletests

    found = [compare(control, variant, alpha, power, min_effect) for variant in variants]
    tested = [i for i, comparison in enumerate(found) if comparison.p_value is not None]
    if len(tested) < 2:
        return found
    adjusted = multipletests([found[i].p_value for i in tested], alpha=alpha, method="holm")[1]
    for i, p_adjusted in zip(tested, adjusted):
        c = found[i]
        verdict, reason = _verdict(c.control, c.variant, float(p_adjusted), c.needed_per_arm, alpha)
        if verdict != NOT_ENOUGH_DATA:
            reason = f"{reason} (Holm-adjusted over {len(tested)} variants; raw p = {c.p_value:.3g})"
        found[i] = replace(c, verdict=verdict, reason=reason, p_adjusted=float(p_adjusted))
    return found


def chi_square_p_value(arms: list[Arm]) -> float | None:
    """Pearson's chi-square test that all arms convert at one rate (k × 2 table); None when unfit."""
    from scipy.stats import chi2_contingency

    if len(arms) < 2 or not all(arm.fit for arm in arms):
        return None
    table = [[arm.conversions, arm.exposures - arm.conversions] for arm in arms]
    return float(chi2_contingency(table, correction=False).pvalue)


def probability_to_beat(control: Arm, variant: Arm) -> float:
    """P(p_variant > p_control) for Beta(1 + conversions, 1 + non-conversions) posteriors, exactly:
    Σ_{i<αv} B(αc + i, βc + βv) / ((βv + i) B(1 + i, βv) B(αc, βc)), summed in log space (O(conversions))."""
    import numpy as np
    from scipy.special import betaln

    ac, bc = 1 + control.conversions, 1 + control.exposures - control.conversions
    av, bv = 1 + variant.conversions, 1 + variant.exposures - variant.conversions
    i = np.arange(av)
    terms = betaln(ac + i, bc + bv) - np.log(bv + i) - betaln(1 + i, bv) - betaln(ac, bc)
    return float(min(max(np.exp(terms).sum(), 0.0), 1.0))


def needed_per_arm(base_rate: float, effect: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Exposures per arm for a two-sided test at `alpha` to detect `base_rate` → `base_rate + effect` with
    `power` (Cohen's h, statsmodels' NormalIndPower); None for no effect (or one too
    small to solve for) or a rate outside [0, 1]."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    target = base_rate + effect
    if effect == 0 or not 0 <= target <= 1:
        return None
    size = abs(float(proportion_effectsize(target, base_rate)))
    # Below 1e-9 statsmodels' solver gives NaN (math.ceil(nan) raised: a 422 for the whole report): an effect
    # that small needs ~10**19 per arm, which no test has — "not enough data", as for no effect.
    if size < 1e-9:
        return None
    needed = NormalIndPower().solve_power(effect_size=size, alpha=alpha, power=power, ratio=1.0)
    return math.ceil(needed) if math.isfinite(needed) else None


def _z_test(control: Arm, variant: Arm, alpha: float) -> tuple[float | None, tuple[float, float] | None]:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    if not (control.fit and variant.fit):
        return None, None
    _, p_value = proportions_ztest([variant.conversions, control.conversions],
                                   [variant.exposures, control.exposures])
    low, high = confint_proportions_2indep(variant.conversions, variant.exposures, control.conversions,
                                           control.exposures, method="newcomb", alpha=alpha)
    return float(p_value), (float(low), float(high))


def _verdict(control: Arm, variant: Arm, p_value: float | None, needed: int | None,
             alpha: float) -> tuple[str, str]:
    if p_value is None:
        return NOT_ENOUGH_DATA, (f"each variant needs at least {MIN_EACH} conversions and {MIN_EACH} exposures "
                                 "without one before a test means anything")
    short = 0 if needed is None else max(needed - min(control.exposures, variant.exposures), 0)
    if short:
        return NOT_ENOUGH_DATA, f"{short:,} more exposures per variant are needed ({needed:,} each)"
    if p_value >= alpha:
        return NO_DIFFERENCE, f"p = {p_value:.3g} ≥ {alpha}: the rates may well be the same"
    assert variant.rate is not None and control.rate is not None
    winner = VARIANT_WINS if variant.rate > control.rate else CONTROL_WINS
    return winner, f"p = {p_value:.3g} < {alpha} with {min(control.exposures, variant.exposures):,} exposures per variant"


def _unfit(control: Arm, variant: Arm, why: str) -> Comparison:
    return Comparison(control, variant, None, None, None, None, None, NOT_ENOUGH_DATA, why)
