"""`crm import`'s check of a segment change: what `crm segments run` could have recorded, and nothing else, since
the relay puts every recorded change on `crm.segments` for marketing tools to act on.

- Its id is the one `domain.segment_change_rules.change_id` derives from its customer, sequence and tiers (a change
  recorded before sequences, LEGACY: `legacy_change_id`, from its instant), so that a file cannot hold one change
  twice, nor take the id of a change still to come (whose record would then conflict and be counted as
  announced: never announced).
- Its customer exists (in the file or the log) and, once forgotten, is only announced leaving every tier: a tier
  entered after the forgetting is refused (a tier entered before it may be recorded just after it: the process
  decided on a state read a moment before the forgetting).
- It is its customer's next link: number 0 comes from no tier; number n > 0 follows a number n − 1 into its old
  tier, and no other number n exists (the file so far or the log: the ids of the other links are derived, so one
  query asks for all of them). Changes recorded before sequences are not in the chain.
- It did not change after it was recorded (`changed_at` ≤ its business time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.customer import Customer
from domain.errors import DomainError
from domain.segment_change_rules import LEGACY, NO_TIER, SegmentChange, change_id, legacy_change_id
from domain.segmentation import TIERS
from services.history.event_lines import zoned_instant
from services.history.rules.facts import micros
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked

_ANY_TIER = (NO_TIER, *TIERS)


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
        else change_id(customer, sequence, old_tier, new_tier)
    if derived.int != rules.subject:
        raise Refusal("subject", f"the segment change number {sequence} of customer {customer} from {old_tier!r} to "
                                 f"{new_tier!r} has the id {derived}, derived from them, not {UUID(int=rules.subject)}")
    if micros(instant) > rules.occurred:
        raise Refusal("changed_at", f"a segment change is recorded after it happened: changed_at {changed_at} is "
                                    "later than its occurred_at")
    rules.refer("customer_id", Customer, customer_id, _announceable(customer, new_tier, micros(instant)))
    if sequence != LEGACY:
        _require_next_link(rules, customer, sequence, old_tier, new_tier)


def _announceable(customer: UUID, new_tier: str, changed_at: int) -> Callable[[Tracked], None]:
    def check(tracked: Tracked) -> None:
        # A forgotten customer's `last` is its forgetting: nothing can follow it on the customer's own stream.
        if tracked.forgotten and new_tier != NO_TIER and tracked.last is not None and changed_at >= tracked.last:
            raise DomainError(f"customer {customer} was forgotten: it can only be announced leaving every tier, not "
                              f"entering {new_tier!r} after its forgetting")
    return check


def _require_next_link(rules: Engine, customer: UUID, sequence: int, old_tier: str, new_tier: str) -> None:
    if sequence == 0 and old_tier != NO_TIER:
        raise Refusal("old_tier", f"customer {customer}'s first announcement (number 0) comes from no tier (''), "
                                  f"not from {old_tier!r}")
    if sequence > 0 and rules.first_known([change_id(customer, sequence - 1, tier, old_tier).int
                                           for tier in _ANY_TIER if tier != old_tier]) is None:
        raise Refusal("sequence", f"customer {customer}'s announcement number {sequence} from {old_tier!r} needs "
                                  f"number {sequence - 1} into {old_tier!r} before it, in the file or the log")
    rivals = [change_id(customer, sequence, old, new).int for old in _ANY_TIER for new in _ANY_TIER
              if old != new and (old, new) != (old_tier, new_tier)]
    if (rival := rules.first_known(rivals)) is not None:
        raise Refusal("sequence", f"customer {customer} already has an announcement number {sequence} "
                                  f"({UUID(int=rival)}); each number is announced once")


RULES: dict[type, Rule] = {SegmentChange.Recorded: _recorded}
