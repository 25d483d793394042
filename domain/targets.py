"""Sales targets (quotas) per owner or team and period, and the team an owner belongs to over time.

Why events: a forecast as of a past instant compares what was expected with the target *as it stood then*;
a target raised mid-quarter must not rewrite last month's attainment. A target is one aggregate per (scope,
name, period) — its id derived from them, so setting the same one twice meets it — whose amount changes
by events. Periods are labels of `domain.periods` (`2026-03`, `2026-Q1`), read in the installation's zone
when a forecast is asked: a label names the business's own month or quarter, wherever the server runs.

Teams: the model had none (a deal's `team` property is free text on one deal). The smallest thing that
gives an owner a team over time is one `OwnerTeam` aggregate per owner (id from the owner's name) whose
events say which team they joined, and when; "" is no team. Both are reference data (`domain.partitions`):
every shard and every partition's consumer sees them, like pipelines.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain import money
from domain.base import CrmAggregate, Meta, require_choice, require_dimension, require_text
from domain.errors import DomainError
from domain.periods import parse_period

OWNER, TEAM = "owner", "team"
SCOPES = (OWNER, TEAM)
TARGET_GRAINS = ("month", "quarter")


def require_target_period(label: str) -> str:
    """A month or quarter label (`2026-03`, `2026-Q1`), as `domain.periods` writes it."""
    try:
        period = parse_period(label)
    except ValueError as error:
        raise DomainError(str(error)) from None
    if period.grain not in TARGET_GRAINS:
        raise DomainError(f"a target is for a month (2026-03) or a quarter (2026-Q1), not a {period.grain} ({label!r})")
    return period.label


def target_id(scope: str, name: str, period: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"crm:target:{scope}:{name}:{period}")


def owner_team_id(owner: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"crm:owner-team:{owner}")


def require_target_name(scope: str, name: str) -> str:
    """An owner (as deals name them) or a team: not sealed, so a team name may hold no contact details."""
    require_choice(scope, SCOPES, "target scope")
    return require_text(name, "owner") if scope == OWNER else require_dimension(name, "team")


class Target(CrmAggregate):
    """A quota: the amount an owner or a team is to win in a month or a quarter."""

    class Set(CrmAggregate.Created):
        scope: str
        name: str
        period: str
        amount: Decimal
        currency: str
        reason: str

        def apply(self, target: Target) -> None:
            target.scope, target.name, target.period = self.scope, self.name, self.period
            target.amount, target.currency = self.amount, self.currency

    class Changed(CrmAggregate.Event):
        amount: Decimal
        currency: str
        reason: str

        def apply(self, target: Target) -> None:
            target.amount, target.currency = self.amount, self.currency

    @classmethod
    def set(cls, scope: str, name: str, period: str, amount: Decimal | int | str, currency: str, reason: str,
            meta: Meta) -> Target:
        name, period = require_target_name(scope, name), require_target_period(period)
        return cls._open(cls.Set, meta, id=target_id(scope, name, period), scope=scope, name=name, period=period,
                         amount=money.amount(amount), currency=money.currency(currency), reason=reason.strip())

    def change(self, amount: Decimal | int | str, currency: str, reason: str, meta: Meta) -> None:
        new_amount, new_currency = money.amount(amount), money.currency(currency)
        if (new_amount, new_currency) == (self.amount, self.currency):
            raise DomainError(f"the target is already {new_amount} {new_currency}")
        self._record(self.Changed, meta, amount=new_amount, currency=new_currency, reason=reason.strip())


class OwnerTeam(CrmAggregate):
    """Which team an owner (a deal's `owner`) belongs to, over time; "" is none."""

    class Assigned(CrmAggregate.Created):
        owner: str
        team: str
        reason: str

        def apply(self, membership: OwnerTeam) -> None:
            membership.owner, membership.team = self.owner, self.team

    class Moved(CrmAggregate.Event):
        old_team: str
        new_team: str
        reason: str

        def apply(self, membership: OwnerTeam) -> None:
            membership.team = self.new_team

    @classmethod
    def assign(cls, owner: str, team: str, reason: str, meta: Meta) -> OwnerTeam:
        owner = require_text(owner, "owner")
        return cls._open(cls.Assigned, meta, id=owner_team_id(owner), owner=owner, team=_team(team),
                         reason=reason.strip())

    def move(self, team: str, reason: str, meta: Meta) -> None:
        new_team = _team(team)
        if new_team == self.team:
            raise DomainError(f"{self.owner} is already in " + (f"team {new_team!r}" if new_team else "no team"))
        self._record(self.Moved, meta, old_team=self.team, new_team=new_team, reason=reason.strip())


def _team(team: str) -> str:
    return "" if not team.strip() else require_dimension(team, "team")


def quarter_months(label: str) -> list[str]:
    """The month labels of a quarter label (`2026-Q1` → 2026-01, 2026-02, 2026-03)."""
    year, quarter = label.split("-Q")
    return [f"{year}-{month:02d}" for month in range(3 * int(quarter) - 2, 3 * int(quarter) + 1)]


def target_of_period(label: str, grain: str, amounts: dict[str, int]) -> int | None:
    """The target of one owner or team for period `label` from its targets by period (`amounts`, cents in one
    currency): a month's own; a quarter's own, else the sum of its months' when any is set; None: no target."""
    if label in amounts:
        return amounts[label]
    if grain != "quarter":
        return None
    months = [amounts[month] for month in quarter_months(label) if month in amounts]
    return sum(months) if months else None
