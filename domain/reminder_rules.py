"""Automatic reminders: when an item (deal, lead, ticket) has stayed too long in a stage, say so once.

A *stage entry* is an item's stay in one stage, named by the aggregate version of the event that moved it
there (so a deal that goes back to a stage it left has a new entry). Each entry has *thresholds*: the
pipeline's dwell thresholds for that stage (`remind_after_days`, counted from the entry), and for a ticket
its service-level targets (`domain.service_levels.SLA_TARGETS`, counted from its opening): a reminder at 75 %
of the target, before the breach, and one at the breach. A threshold is *due* once the clock has passed it
while the item is still in that entry; the reminder for it is one `Reminder` aggregate whose id is derived
from (item, entry version, threshold), so the log's own uniqueness of (id, version) refuses a second one,
whoever tries and however often (a process killed after saving, a restart that did not see it yet).

SLA reminders belong to a ticket's first span only: from its opening until it is resolved (a reopened
ticket's earlier targets have been met or breached already; its own stages' dwell thresholds still apply).
The priority is the one it was opened with (no event changes it).

An SLA threshold is one per (ticket, SLA clock, threshold), not per stage entry: the clock of
`domain.service_levels` runs from the opening to the first response (response) or to the resolution
(resolution), whatever stages the ticket passes meanwhile, and never restarts (a reopened ticket has none).
So a ticket going feedback → in_progress → feedback is reminded of `sla:resolution:0.75` once: the reminder's
id derives from the clock's start (the opening, version 1), not from the entry it was noticed in. Dwell
thresholds stay one per stage entry (`tests/unit/domain/test_reminder_rules.py`).

"Remind after N days" is **elapsed time**, N × 24 h from the entry, not N calendar days of a zone: a
threshold across a DST change falls an hour earlier or later on the wall clock (see `thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import CrmAggregate, Meta
from domain.partitions import in_partition, partition_of
from domain.service_levels import SLA_TARGETS

ITEM_KINDS = ("deal", "lead", "ticket")
SLA_FRACTIONS = (0.75, 1.0)  # of a target: a warning with a quarter of the time left, then the breach itself
SLA_STAGES = {"response": ("feedback",), "resolution": ("feedback", "in_progress")}  # the service pipeline's
SLA_PREFIX = "sla:"
SLA_CLOCK_VERSION = 1  # a ticket's SLA clocks start at its opening (its first event) and never restart


@dataclass(frozen=True)
class StageEntry:
    """An item's stay in a stage, as the reminder rule needs it."""

    item_id: UUID
    kind: str  # deal, lead or ticket
    pipeline: str
    stage: str
    version: int  # the item's version at the event that moved it into the stage
    entered_at: datetime
    opened_at: datetime  # when the item was created: the service-level clock of a ticket starts there
    first_span: bool = True  # a ticket not yet resolved (nor reopened): its service-level targets apply
    priority: str = ""  # a ticket's


@dataclass(frozen=True)
class Threshold:
    label: str  # "3d" (days in the stage), "sla:response:0.75" (share of a ticket's target)
    due_at: datetime


def dwell_label(days: int | float) -> str:
    """`3d`, `0.5d`: the shortest text that reads back as the same number, so two thresholds never share a
    label (and a reminder id): `:g`'s six digits made 1000.12 and 1000.125 one."""
    return f"{days}d"


def thresholds(entry: StageEntry, remind_after_days: list[int | float]) -> list[Threshold]:
    """Every threshold of a stage entry, earliest first: the stage's dwell thresholds and, for a ticket in its
    first span, its service-level ones for the stage it is in.

    **Choice**: N days is N × 24 h of elapsed time (a `timedelta` on the UTC instant), not N calendar days in
    the installation's zone: the SLA targets are elapsed hours too, fractional thresholds (0.5 d) need it, and
    a due time must not depend on a setting (CRM_TIME_ZONE, `?tz=`) that differs between processes or changes
    later — the process, the read model and an import derive the same instant. Across a DST change the
    reminder comes at another wall-clock hour (entered Saturday 09:00 in New York before the spring change,
    "1d" is due Sunday 10:00 EDT)."""
    found = [Threshold(dwell_label(days), entry.entered_at + timedelta(days=days)) for days in remind_after_days]
    target = SLA_TARGETS.get(entry.priority) if entry.kind == "ticket" and entry.first_span else None
    if target is not None:
        for kind, hours in (("response", target.response_hours), ("resolution", target.resolution_hours)):
            if entry.stage in SLA_STAGES[kind] and (kind == "resolution" or entry.version == 1):
                found += [Threshold(f"sla:{kind}:{share:g}", entry.opened_at + timedelta(hours=hours * share))
                          for share in SLA_FRACTIONS]
    return sorted(found, key=lambda t: (t.due_at, t.label))


def due(entry: StageEntry, remind_after_days: list[int | float], now: datetime,
        left_at: datetime | None = None) -> list[Threshold]:
    """The thresholds of `entry` a reminder is due for at `now`: passed, and passed while the item was still
    in the entry (`left_at`: when it left, None while it stays). An item that has left is reminded of nothing
    more, even of a threshold it passed before leaving: a reminder about a stay that is over is stale."""
    if left_at is not None and left_at <= now:
        return []
    return [t for t in thresholds(entry, remind_after_days) if t.due_at <= now]


def is_sla(label: str) -> bool:
    return label.startswith(SLA_PREFIX)


def reminder_key_version(entry_version: int, label: str) -> int:
    """What a threshold's reminder is one of besides the item and label: its stage entry for a dwell threshold,
    the SLA clock's start for a service level (the same through every stage the ticket passes)."""
    return SLA_CLOCK_VERSION if is_sla(label) else entry_version


def reminder_id(item_id: UUID, entry_version: int, label: str, customer_id: UUID | None = None) -> UUID:
    """The one id a reminder for (item, stage entry, threshold) — for an SLA threshold (item, SLA clock,
    threshold) — can have, in the item's home partition — its customer's for a deal or ticket (where the relay
    and the shards put their events, also for records made before home partitions, whose own id says nothing),
    else its own — so that it is ordered with them."""
    return entry_reminder_id(item_id, reminder_key_version(entry_version, label), label, customer_id)


def entry_reminder_id(item_id: UUID, entry_version: int, label: str, customer_id: UUID | None = None) -> UUID:
    """The id derived from the stage entry itself: every reminder's before SLA reminders were one per clock
    (logs written then hold SLA reminders under it, which `crm import` still accepts)."""
    home = partition_of(customer_id or item_id)
    return in_partition(home, uuid5(NAMESPACE_URL, f"crm:reminder:{item_id}:{entry_version}:{label}"))


class Reminder(CrmAggregate):
    """A reminder that an item has stayed in a stage for a threshold: one event, never changed."""

    class Emitted(CrmAggregate.Created):
        item_id: UUID
        item_kind: str
        pipeline: str
        stage: str
        entry_version: int
        entered_at: datetime
        threshold: str
        due_at: datetime
        owner: str  # the item's owner (a ticket's assignee) when reminded; "" when it has none
        customer_id: UUID | None

        def apply(self, reminder: Reminder) -> None:
            reminder.item_id, reminder.threshold, reminder.owner = self.item_id, self.threshold, self.owner

    @classmethod
    def emit(cls, entry: StageEntry, threshold: Threshold, owner: str, customer_id: UUID | None,
             meta: Meta) -> Reminder:
        return cls._open(cls.Emitted, meta, id=reminder_id(entry.item_id, entry.version, threshold.label, customer_id),
                         item_id=entry.item_id, item_kind=entry.kind, pipeline=entry.pipeline, stage=entry.stage,
                         entry_version=entry.version, entered_at=entry.entered_at, threshold=threshold.label,
                         due_at=threshold.due_at, owner=owner, customer_id=customer_id)
