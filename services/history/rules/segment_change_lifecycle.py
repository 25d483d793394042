"""`crm import`'s check of a segment change: what `crm segments run` could have recorded, and nothing else, since
the relay puts every recorded change on `crm.segments` for marketing tools to act on.

- Its id is the one `domain.segment_change_rules.change_id` derives from its customer and sequence (a change
  recorded before sequences, LEGACY: `legacy_change_id`, from its instant and tiers), so that a file cannot hold
  one link of a chain twice (the second is a creation of an existing record), nor take the id of a link still to
  come.
- Its customer exists (in the file or the log). Not that it was not forgotten: the process decides on its read
  model, which may lag the forgetting (an ageing it wakes for 50 ms after a forgetting it has not seen yet), and
  then announces the leaving; a log it wrote must import (review of 2026-11-30, P2).
- It is its customer's next link: number 0 comes from no tier; number n > 0 follows number n − 1 (in the file
  or the log: its id is derived) into its old tier. Changes recorded before sequences are not in the chain, and a
  chain continued after one is refused, as are ids derived with the tiers: both existed only in development
  builds of 2026-11-30 that never shipped (no release recorded them).
- It did not change after it was recorded (`changed_at` ≤ its business time).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.customer import Customer
from domain.errors import DomainError
from domain.segment_change_rules import LEGACY, NO_TIER, SegmentChange, change_id, legacy_change_id
from services.history.event_lines import zoned_instant
from services.history.rules.facts import micros
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
    instant = zoned_instant(str(changed_at))
    derived = legacy_change_id(customer, instant, old_tier, new_tier) if sequence == LEGACY \
        else change_id(customer, sequence)
    if derived.int != rules.subject:
        raise Refusal("subject", f"the segment change number {sequence} of customer {customer} from {old_tier!r} to "
                                 f"{new_tier!r} has the id {derived}, derived from them, not {UUID(int=rules.subject)}")
    if micros(instant) > rules.occurred:
        raise Refusal("changed_at", f"a segment change is recorded after it happened: changed_at {changed_at} is "
                                    "later than its occurred_at")
    rules.refer("customer_id", Customer, customer_id)
    if sequence != LEGACY:
        _require_next_link(rules, customer, sequence, old_tier)
    change.status = new_tier  # what the next link's old tier must be


def _require_next_link(rules: Engine, customer: UUID, sequence: int, old_tier: str) -> None:
    if sequence == 0:
        if old_tier != NO_TIER:
            raise Refusal("old_tier", f"customer {customer}'s first announcement (number 0) comes from no tier "
                                      f"(''), not from {old_tier!r}")
        return

    def into_old_tier(previous: Tracked) -> None:
        if previous.status != old_tier:
            raise DomainError(f"customer {customer}'s announcement number {sequence} comes from {old_tier!r}, but "
                              f"number {sequence - 1} went into {previous.status!r}")
    rules.refer("sequence", SegmentChange, change_id(customer, sequence - 1).int, into_old_tier,
                target=f"announcement number {sequence - 1} of customer {customer}")


RULES: dict[type, Rule] = {SegmentChange.Recorded: _recorded}
