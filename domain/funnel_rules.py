"""What a funnel's numbers mean: the business's definitions of reaching a stage, converting, winning,
the sales cycle and being stuck, defined once for every path that computes a funnel (the read model's
tallies, its interval scan and the from-scratch replay), so that they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from domain.pipeline import WON

STUCK_DAYS = 30.0
"""An item is stuck when it has been in one open stage for more than this many days (the default of every
funnel report, whichever way it is asked for; a report may be asked with another threshold)."""


def stage_levels(stage_keys: Sequence[str]) -> dict[str, int]:
    """How far along its pipeline an item in each stage is: the open stages in order, then won after every
    one of them. Lost is no level: a lost item keeps the furthest stage it had reached."""
    levels = {key: i for i, key in enumerate(stage_keys)}
    levels[WON] = len(stage_keys)
    return levels


def reached(furthest: Mapping[int, int], levels: int) -> list[int]:
    """Items that reached each of `levels` levels, from the items per furthest level: an item reached every
    level up to its furthest, including stages it skipped (a deal may jump straight to proposal)."""
    return [sum(n for level, n in furthest.items() if level >= i) for i in range(levels)]


def conversion(base: int, count: int) -> float | None:
    """The share `count / base` of a step that every item of `base` has already taken or not (tickets
    rated of those resolved, …); None when `base` is empty. Not for a funnel's stages, whose items may
    still be open: see `stage_outcomes` and `stage_conversion`."""
    return count / base if base else None


NO_DECIDED_ITEMS = "no decided items (none advanced or lost)"
NO_ITEM_ENTERED = "no item entered it"
NO_LOSSES_RECORDED = ("no lost items recorded: losses (lost deals, disqualified leads) may be missing from the "
                      "data, so the rate cannot be told")


class StageOutcome(NamedTuple):
    """What became of the items that reached a stage: went further, were lost there, or are still open
    there (reached it and got no further yet). `reached == advanced + lost + still_open`."""

    reached: int
    advanced: int
    lost: int
    still_open: int


def stage_outcomes(furthest: Mapping[int, int], lost_furthest: Mapping[int, int], levels: int) -> list[StageOutcome]:
    """Per level (`levels` of them), from the items per furthest level and the lost items per the furthest
    level they had reached: a lost item is lost at its furthest stage, an item that got further advanced."""
    reached_ = reached(furthest, levels + 1)
    outcomes = []
    for i in range(levels):
        lost = lost_furthest.get(i, 0)
        outcomes.append(StageOutcome(reached_[i], reached_[i + 1], lost, reached_[i] - reached_[i + 1] - lost))
    return outcomes


def stage_conversion(outcome: StageOutcome, losses_recorded: bool = True, entered: bool = True) -> float | None:
    """Advanced among the decided items of a stage (advanced or lost there): the items still open there
    are not decided yet, so they count in neither part (dividing by them would call every fresh item a
    failure). None without a decided item, when the pipeline records no loss at all (`NO_LOSSES_RECORDED`), or
    when no item ever was in the stage (`entered` False): items that skipped it "reached" it (`reached`)
    and could not be lost there, so their 100 % would say nothing of the stage (imported histories skip
    stages all the time: issue 12)."""
    decided = outcome.advanced + outcome.lost
    return outcome.advanced / decided if decided and losses_recorded and entered else None


def stage_conversion_note(outcome: StageOutcome, losses_recorded: bool = True, entered: bool = True) -> str | None:
    """Why `stage_conversion` is None (None when it is a number)."""
    if outcome.reached and not entered:
        return f"{NO_ITEM_ENTERED}: the {outcome.reached} that reached it skipped it"
    if not outcome.advanced + outcome.lost:
        return f"{NO_DECIDED_ITEMS}; {outcome.still_open} still open" if outcome.reached else "no item reached it"
    return None if losses_recorded else NO_LOSSES_RECORDED


def drop_off(conversion_to_next: float | None) -> float | None:
    """The share of the decided items of a stage that were lost there."""
    return None if conversion_to_next is None else 1 - conversion_to_next


def win_rate(won: int, lost: int, losses_recorded: bool | None = None) -> float | None:
    """Won among the decided items (won or lost); open items are not decided yet, so they do not count.
    None without a decided item, and when the data records no loss at all: 100 % then says only that losses
    are not in the data (an export of won deals only, leads never disqualified), as issue 12 found.
    `losses_recorded` is whether the whole pipeline has a lost item (default: whether `lost` is not 0): a
    filtered or grouped report passes the pipeline's, so an owner who really lost nothing gets 100 %."""
    recorded = lost > 0 if losses_recorded is None else losses_recorded
    return won / (won + lost) if won + lost and recorded else None


def win_rate_note(won: int, lost: int, losses_recorded: bool | None = None) -> str | None:
    """Why `win_rate` is None (None when it is a number)."""
    if not won + lost:
        return NO_DECIDED_ITEMS
    return None if (lost > 0 if losses_recorded is None else losses_recorded) else NO_LOSSES_RECORDED


def average_cycle(total_won_cycle: float, won: int) -> float | None:
    """The average sales cycle: time from opening to winning, over the won items only."""
    return total_won_cycle / won if won else None


def bottleneck(conversions: Sequence[tuple[str, float | None]]) -> str | None:
    """The stage (of (stage, conversion to next) pairs, in pipeline order) that converts worst; the earlier
    stage on a tie; None when no stage was reached."""
    convertible = [(stage, rate) for stage, rate in conversions if rate is not None]
    return min(convertible, key=lambda pair: pair[1])[0] if convertible else None
