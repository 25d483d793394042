"""The rules of pipeline inspection and win/loss, said once: how a moved close date is classified, what a
window of changes is, the win rate, and how long a deal has gone without activity.

Why here: the read model (`projections/inspection`), its tests and the dashboard must agree on what "pushed"
means at a period's edge. A close date is a date of the business's own calendar (`domain.periods`); a move is
classified by the periods of its old and new dates in the grain asked (month or quarter): a later period is
**pushed** (slipped out of the period), an earlier one **pulled in**, the same period **within**, and a date
given to a deal that had none **set**. A window between two instants A < B is (A, B]: exactly the changes that
turn the deals as of A into the deals as of B.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from domain.periods import period_of_day

PUSHED, PULLED_IN, WITHIN, SET = "pushed", "pulled_in", "within", "set"
DIRECTIONS = (PUSHED, PULLED_IN, SET, WITHIN)  # the order a report lists them in
INSPECTION_GRAINS = ("month", "quarter")
_MONTHS = {"month": 1, "quarter": 3}


def require_inspection_grain(grain: str) -> str:
    if grain not in INSPECTION_GRAINS:
        raise ValueError(f"periods here are by month or quarter, not {grain!r}")
    return grain


def require_window(start: datetime, end: datetime) -> None:
    """A window's start comes strictly before its end (a sentence for the gateways otherwise)."""
    if start >= end:
        raise ValueError(f"the window's start ({start.isoformat()}) must come before its end ({end.isoformat()})")


MAX_DAYS = 36_525  # a hundred years: business time starts in 1900, and 10⁶ days before now is before year 1 (a 500)


def require_days(days: int) -> int:
    if days < 0:
        raise ValueError(f"days without activity cannot be negative ({days})")
    if days > MAX_DAYS:
        raise ValueError(f"days without activity must be at most {MAX_DAYS:,} (a hundred years), not {days:,}")
    return days


def periods_moved(old: date, new: date, grain: str) -> int:
    """How many periods of `grain` the date moved: positive later, negative earlier, 0 within one."""
    size = _MONTHS[require_inspection_grain(grain)]
    first_old, first_new = period_of_day(old, grain).first, period_of_day(new, grain).first
    return ((first_new.year * 12 + first_new.month) - (first_old.year * 12 + first_old.month)) // size


def direction(old: date | None, new: date, grain: str) -> str:
    """pushed, pulled_in, within or set: how a close date that was `old` and is `new` moved."""
    if old is None:
        return SET
    moved = periods_moved(old, new, grain)
    return PUSHED if moved > 0 else PULLED_IN if moved < 0 else WITHIN


def win_rate_percent(won: int, lost: int) -> str | None:
    """Won deals as a percentage of decided ones, one decimal (half-even); None when nothing was decided."""
    if won + lost == 0:
        return None
    return str((Decimal(won) * 100 / Decimal(won + lost)).quantize(Decimal("0.1"), ROUND_HALF_EVEN))


def days_inactive(last_activity: datetime, as_of: datetime) -> int:
    """Whole days (24 h) from the last activity to `as_of`."""
    return (as_of - last_activity) // timedelta(days=1)


def is_inactive(last_activity: datetime, as_of: datetime, days: int) -> bool:
    """No activity for `days` × 24 h as of `as_of`: the last one at or before `as_of` − days (0: every deal)."""
    return last_activity <= as_of - timedelta(days=days)
