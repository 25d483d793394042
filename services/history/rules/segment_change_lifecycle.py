"""`crm import`'s check of a segment change: its id is the one `domain.segment_change_rules.change_id` derives
from its customer, instant and tiers, so that a file cannot hold one change twice, nor take the id of a change
still to come (whose record would then conflict and be counted as announced: never announced)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.segment_change_rules import SegmentChange, change_id
from services.history.event_lines import zoned_instant
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _recorded(rules: Engine, change: Tracked, customer_id: int, changed_at: Any, old_tier: str,
              new_tier: str) -> None:
    customer = UUID(int=customer_id)
    if old_tier == new_tier:
        raise Refusal("new_tier", f"a segment change needs two tiers; both are {new_tier!r}")
    derived = change_id(customer, zoned_instant(str(changed_at)), old_tier, new_tier)
    if derived.int != rules.subject:
        raise Refusal("subject", f"the segment change of customer {customer} from {old_tier!r} to {new_tier!r} at "
                                 f"{changed_at} has the id {derived}, derived from them, not {UUID(int=rules.subject)}")


RULES: dict[type, Rule] = {SegmentChange.Recorded: _recorded}
