"""What a funnel's numbers mean: the business's definitions of reaching a stage, converting, winning,
the sales cycle and being stuck, defined once for every path that computes a funnel (the read model's
tallies, its interval scan and the from-scratch replay), so that they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def conversion(reached_here: int, reached_next: int) -> float | None:
    """The share of the items that reached a stage which went on to reach the next; None when none reached it."""
    return reached_next / reached_here if reached_here else None


def drop_off(conversion_to_next: float | None) -> float | None:
    """The share of the items that reached a stage which went no further."""
    return None if conversion_to_next is None else 1 - conversion_to_next


def win_rate(won: int, lost: int) -> float | None:
    """Won among the decided items (won or lost); open items are not decided yet, so they do not count."""
    return won / (won + lost) if won + lost else None


def average_cycle(total_won_cycle: float, won: int) -> float | None:
    """The average sales cycle: time from opening to winning, over the won items only."""
    return total_won_cycle / won if won else None


def bottleneck(conversions: Sequence[tuple[str, float | None]]) -> str | None:
    """The stage (of (stage, conversion to next) pairs, in pipeline order) that converts worst; the earlier
    stage on a tie; None when no stage was reached."""
    convertible = [(stage, rate) for stage, rate in conversions if rate is not None]
    return min(convertible, key=lambda pair: pair[1])[0] if convertible else None
