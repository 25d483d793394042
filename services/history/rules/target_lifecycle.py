"""`crm import`'s checks of targets' and owners' teams' events: a target's id derives from its scope, name and
period, an owner's team's from the owner (as `domain.targets` derives them), so that a file cannot hold two
targets for one owner and period under two ids."""

from __future__ import annotations

from uuid import UUID

from domain.errors import DomainError
from domain.targets import OwnerTeam, Target, owner_team_id, require_target_name, target_id
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _target_set(rules: Engine, target: Tracked, scope: str, name: str, period: str) -> None:
    try:
        require_target_name(scope, name)
    except DomainError as error:
        raise Refusal("name", str(error)) from None
    _derived(rules, target_id(scope, name, period), f"the target of {scope} {name} for {period}")


def _team_assigned(rules: Engine, membership: Tracked, owner: str) -> None:
    _derived(rules, owner_team_id(owner), f"the team of {owner}")


def _derived(rules: Engine, derived: UUID, what: str) -> None:
    if derived.int != rules.subject:
        raise Refusal("subject", f"{what} has the id {derived}, derived from it, not {UUID(int=rules.subject)}")


RULES: dict[type, Rule] = {Target.Set: _target_set, OwnerTeam.Assigned: _team_assigned}
