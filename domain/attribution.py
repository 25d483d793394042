"""Multi-touch attribution: how a won deal's value is shared among the campaign touches that came before it.

Why several models: each answers another question. First and last touch credit the campaigns that open and
close doors (`domain.marketing` keeps those two for the campaign report); linear shares evenly; U-shaped
(40 % first, 40 % last, 20 % the rest) and W-shaped (30 % each to the first touch, the touch that made the
lead and the touch that opened the deal, 10 % the rest) credit the milestones; time decay credits recent
touches more, halving a touch's weight every `half_life_days` before the win. These are HubSpot's and
Salesforce's definitions; where they leave a case open the choice is written where it is made.

Money is shared in whole cents by the largest remainder (Hamilton's method), in exact arithmetic: weights are
`fractions.Fraction`s (time decay's float powers of 2 converted exactly), so a floor never overshoots — floats
did above 2**53 cents, which money allows up to 10**17 — and the credits of every deal
sum to its value exactly under every model, each one ≥ 0, — the property `tests/unit/domain/test_attribution.py` holds —
and ties go to the earlier touch, so the answer does not depend on the order facts arrived in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from domain.marketing import Touch

MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay")
HALF_LIFE_DAYS = 7.0  # HubSpot's default for time decay
_DAY_MICROS = 86_400_000_000


@dataclass(frozen=True)
class Milestones:
    """When the lead that became this customer was created and when the deal was opened (micros since the
    epoch; None when the history has no such instant): W-shaped credits the last touch at or before each."""

    lead_created_at: int | None = None
    deal_opened_at: int | None = None


def require_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"the attribution model must be one of {', '.join(MODELS)}, not {model!r}")
    return model


def credit(touches: Sequence[Touch], won_at: int, value_cents: int, model: str,
           milestones: Milestones = Milestones(), half_life_days: float = HALF_LIFE_DAYS) -> dict[str | tuple[str, str], int]:
    """Cents of `value_cents` credited to each campaign under `model`, from the touches at or before the win
    (a touch after the win cannot have brought it about); {} without such a touch."""
    before = sorted(touch for touch in touches if touch.at <= won_at)
    if not before:
        return {}
    weights = _weights(before, won_at, require_model(model), milestones, half_life_days)
    credited: dict[str | tuple[str, str], int] = defaultdict(int)
    for touch, cents in zip(before, _shares(value_cents, weights)):
        if cents:
            credited[touch.campaign_id] += cents
    return dict(credited)


def credit_all(deals: Iterable[tuple[Sequence[Touch], int, int, Milestones]], model: str,
               half_life_days: float = HALF_LIFE_DAYS) -> dict[str, int]:
    """The cents credited to each campaign over many won deals (touches, won at, value, milestones)."""
    total: dict[str, int] = defaultdict(int)
    for touches, won_at, value, milestones in deals:
        for campaign, cents in credit(touches, won_at, value, model, milestones, half_life_days).items():
            total[campaign] += cents
    return dict(total)


def _weights(touches: list[Touch], won_at: int, model: str, milestones: Milestones,
             half_life_days: float) -> list[Fraction]:
    n = len(touches)
    one, zero = Fraction(1), Fraction(0)
    if model == "first_touch":
        return [one] + [zero] * (n - 1)
    if model == "last_touch":  # of touches at the same last instant, the smallest campaign id, as domain.marketing
        last = next(i for i, touch in enumerate(touches) if touch.at == touches[-1].at)
        return [one if i == last else zero for i in range(n)]
    if model == "linear":
        return [one] * n
    if model == "time_decay":
        if half_life_days <= 0:
            raise ValueError("the half-life of time decay must be a positive number of days")
        # Ages from the latest touch, not the win: the same proportions (every weight times 2^(gap/half-life)),
        # but the latest weighs 1, so a short half-life cannot underflow every weight to 0.0 (0.5 ** 1100 does).
        latest = touches[-1].at
        # Each float converted exactly (a Fraction with a power-of-2 denominator): only the exponent is rounded,
        # the allocation below is exact.
        return [Fraction(0.5 ** ((latest - touch.at) / (half_life_days * _DAY_MICROS))) for touch in touches]
    keys = [0, n - 1] if model == "u_shaped" else [0, *_milestone_touches(touches, milestones)]
    return _keyed(n, sorted(set(keys)), Fraction(4, 5) if model == "u_shaped" else Fraction(9, 10))


def _milestone_touches(touches: list[Touch], milestones: Milestones) -> list[int]:
    """The indexes of the last touch at or before the lead's creation and the deal's opening (those found)."""
    found = []
    for instant in (milestones.lead_created_at, milestones.deal_opened_at):
        if instant is not None and (before := [i for i, touch in enumerate(touches) if touch.at <= instant]):
            found.append(before[-1])
    return found


def _keyed(n: int, keys: list[int], share: Fraction) -> list[Fraction]:
    """`share` split evenly over the key touches, the rest over the others; all to the keys when there are
    no others (one or two touches under U-shaped: 100 % or 50/50; W-shaped whose milestones coincide: the
    distinct ones evenly, as HubSpot does)."""
    others = n - len(keys)
    if others == 0:
        return [Fraction(1)] * n
    return [share / len(keys) if i in keys else (1 - share) / others for i in range(n)]


def _shares(total: int, weights: list[Fraction]) -> list[int]:
    """Whole cents in proportion to `weights`, summing to `total` exactly (largest remainder; ties to the
    earlier touch). Exact: each floor is ≤ its share, so 0 ≤ total − Σ floors < len(weights), and a touch of
    weight 0 (remainder 0) is reached only after every touch with a remainder — never, as that many cents are
    not left."""
    whole = sum(weights)
    exact = [total * weight / whole for weight in weights]
    cents = [amount.numerator // amount.denominator for amount in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - cents[i]), i))
    for i in by_remainder[: total - sum(cents)]:
        cents[i] += 1
    return cents
