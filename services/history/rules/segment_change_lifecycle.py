"""`crm import`'s check of a segment change: its id is the one `domain.segment_change_rules.change_id` derives
from its customer, sequence and tiers (a change recorded before sequences, LEGACY: `legacy_change_id`, from its
instant), so that a file cannot hold one change twice, nor take the id of a change
still to come (whose record would then conflict and be counted as announced: never announced)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.segment_change_rules import LEGACY, SegmentChange, change_id, legacy_change_id
from services.history.event_lines import zoned_instant
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _recorded(rules: Engine, change: Tracked, customer_id: int, changed_at: Any, old_tier: str,
              new_tier: str, sequence: int | None) -> None:
    customer = UUID(int=customer_id)
    sequence = LEGACY if sequence is None else sequence  # a line of version 1
    if old_tier == new_tier:
        raise Refusal("new_tier", f"a segment change needs two tiers; both are {new_tier!r}")
    if not isinstance(sequence, int) or sequence < LEGACY:
        raise Refusal("sequence", f"a segment change's sequence counts the announcements before it: not {sequence}")
    derived = legacy_change_id(customer, zoned_instant(str(changed_at)), old_tier, new_tier) if sequence == LEGACY \
        else change_id(customer, sequence, old_tier, new_tier)
    if derived.int != rules.subject:
        raise Refusal("subject", f"the segment change number {sequence} of customer {customer} from {old_tier!r} to "
                                 f"{new_tier!r} has the id {derived}, derived from them, not {UUID(int=rules.subject)}")


RULES: dict[type, Rule] = {SegmentChange.Recorded: _recorded}
