"""Segment changes for marketing tools: a customer entered a value tier, or left every tier, at an instant — said
once, as one event downstream tools can react to (send each segment what suits it).

What is announced is the customer's tier *now* (`domain.segmentation`: by the clock, so a tier that changes by
the mere ageing of purchases is announced at the instant it changes, with no event behind it). A change is
due when the tier the customer is in at the clock's instant differs from the tier last announced for them:

- `old_tier` is the tier last announced ("" before the first announcement), `new_tier` the tier now, and
  `changed_at` when the customer entered it (`SegmentInterval.tier_since`: business time, exact to the µs of an
  age limit, not when it was noticed);
- a forgotten customer leaves every tier at the instant it was forgotten (`new_tier` ""), so that downstream
  tools stop addressing them; nothing is announced for them afterwards;
- marketing consent (`Customer.ConsentChanged`): a customer whose consent is withdrawn leaves every tier at the
  instant it was withdrawn, as if forgotten, and nothing is announced while it stays withdrawn; granted again,
  their tier now is announced (`changed_at` the grant, or the tier's start if that is later) — marketing tools
  are told to address only customers who agree to it;
- no stale change: a tier the customer entered and left again while nothing announced (the process was down)
  is not announced; the next announcement's `old_tier` is the last one announced, so each customer's
  announcements form one chain (each `old_tier` is the previous `new_tier`).

The change's id is derived from (customer, sequence), `sequence` being how many announcements of the customer came
before it (its link in the chain), in the customer's home partition, so the log's uniqueness of (id, version)
refuses a second record of the same link, whoever tries and however often: a process killed after recording it,
before its read model saw it (the read model counts the same announcements, so the repeat gets the same id), or a
second process — on another host, or with a read model further behind — that would say another tier for the same
link: the chain cannot fork, whatever the locks. Not from `changed_at`, nor from the tiers: the instant is
recomputed from the current history, and an event entered late can bring back an instant and tiers announced
once already (ordinary → potential at day 1, potential → ordinary at day 2, then a deal back-dated to day 1.5:
ordinary → potential at day 1 again), which a later announcement must still be able to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import CrmAggregate, Meta
from domain.errors import DomainError
from domain.partitions import in_partition, partition_of
from domain.segmentation import TIERS

NO_TIER = ""  # before a customer's first announcement, and once forgotten
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


LEGACY = -1  # the sequence of a change recorded before sequences (event version 1): its id is `legacy_change_id`


def change_id(customer_id: UUID, sequence: int) -> UUID:
    """The one id the customer's announcement number `sequence` (0: the first) can have, whatever its tiers, in the
    customer's home partition (where the relay puts the customer's events: in order with them)."""
    if sequence == LEGACY:
        raise DomainError("a change recorded before sequences has the id legacy_change_id derives")
    name = f"crm:segment-change:{customer_id}:#{sequence}"
    return in_partition(partition_of(customer_id), uuid5(NAMESPACE_URL, name))


def legacy_change_id(customer_id: UUID, changed_at: datetime, old_tier: str, new_tier: str) -> UUID:
    """The id of a change recorded before sequences (event version 1), from its instant (µs since the epoch, so
    two spellings of one instant give one id): what `crm import` checks such a change against."""
    micros = (changed_at - _EPOCH) // _MICROSECOND
    name = f"crm:segment-change:{customer_id}:{micros}:{old_tier}:{new_tier}"
    return in_partition(partition_of(customer_id), uuid5(NAMESPACE_URL, name))


@dataclass(frozen=True)
class TierChange:
    """A change to announce: the customer went from `old_tier` to `new_tier` at `changed_at`; `sequence`: how many
    announcements of the customer came before it."""

    customer_id: UUID
    old_tier: str
    new_tier: str
    changed_at: datetime
    sequence: int = 0

    @property
    def id(self) -> UUID:
        return change_id(self.customer_id, self.sequence)


def due_change(customer_id: UUID, announced: str, current: tuple[str, datetime] | None,
               forgotten_at: datetime | None = None, sequence: int = 0) -> TierChange | None:
    """The change to announce now, None when there is none.

    `announced`: the tier last announced (NO_TIER: none yet, or the customer's leaving announced); `current`:
    (tier, since when) at the clock's instant, None when the customer is in no tier then (forgotten, or not a
    customer yet, or marketing consent withdrawn); `forgotten_at`: when it was forgotten or its marketing consent
    withdrawn, if it was by now; `sequence`: how many announcements
    of the customer were made."""
    if current is None:
        if announced == NO_TIER or forgotten_at is None:
            return None
        return TierChange(customer_id, announced, NO_TIER, forgotten_at, sequence)
    tier, since = current
    if tier == announced:
        return None
    return TierChange(customer_id, announced, tier, since, sequence)


def require_tier(tier: str, allow_none: bool = True) -> str:
    """`tier` if it is a value tier (or NO_TIER where allowed); DomainError otherwise."""
    if tier in TIERS or (allow_none and tier == NO_TIER):
        return tier
    raise DomainError(f"unknown value tier {tier!r}; known: {', '.join(TIERS)} (or '' for none)")


class SegmentChange(CrmAggregate):
    """A customer's change of value tier, announced: one event, never changed, on a stream of its own (its id is
    the change's, `change_id`), so that announcing never contends with the customer's own commands."""

    class Recorded(CrmAggregate.Created):
        """Version 2 added `sequence` (how many announcements of the customer came before it; the id derives from
        it); a version-1 change reads as LEGACY: its id derives from its instant (`legacy_change_id`)."""

        class_version = 2
        customer_id: UUID
        old_tier: str  # "" before the customer's first announcement
        new_tier: str  # "" once the customer is forgotten
        changed_at: datetime  # business time of the change (an age limit passed to the µs, a deal won, …)
        sequence: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["sequence"] = LEGACY

        def apply(self, change: SegmentChange) -> None:
            change.customer_id, change.old_tier, change.new_tier = self.customer_id, self.old_tier, self.new_tier
            change.changed_at = self.changed_at

    @classmethod
    def record(cls, change: TierChange, meta: Meta) -> SegmentChange:
        if change.old_tier == change.new_tier:
            raise DomainError(f"a segment change needs two tiers; both are {change.new_tier!r}")
        require_tier(change.old_tier)
        require_tier(change.new_tier)
        if change.sequence < 0:
            raise DomainError(f"a segment change's sequence counts announcements before it: not {change.sequence}")
        return cls._open(cls.Recorded, meta, id=change.id, customer_id=change.customer_id,
                         old_tier=change.old_tier, new_tier=change.new_tier, changed_at=change.changed_at,
                         sequence=change.sequence)
