"""Where an item is: its stage entry and owner, folded from its events with the funnel's own steps
(`projections.funnel.steps`, so a lead's second contact is no move here either). The read model keeps the
result per item; the reminder process folds an item's events from the log with the same function before it
reminds, so that it never reminds of a stay the log says is over."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.deal import Deal
from domain.lead import Lead
from domain.personal_data import mark
from domain.reminder_rules import StageEntry
from domain.ticket import Ticket
from projections.funnel.steps import Enter, Move, Revise, funnel_steps
from projections.reminders.rows import ItemRow
from projections.tables import from_micros, micros

KINDS: tuple[tuple[type, str], ...] = ((Deal.Event, "deal"), (Lead.Event, "lead"), (Ticket.Event, "ticket"))
CLOSED = "closed"  # where a ticket closed without a rating stays: no stage of any pipeline, so no threshold


def kind_of(event: Any) -> str | None:
    return next((kind for cls, kind in KINDS if isinstance(event, cls)), None)


def track(item: ItemRow | None, event: Any) -> tuple[ItemRow | None, bool]:
    """The item after `event` (None: not an item's event, or of an item never opened), and whether the event
    moved it into a new stage entry."""
    kind = kind_of(event)
    if kind is None:
        return item, False
    moved = False
    for step in funnel_steps(event):
        if isinstance(step, Enter):
            item, moved = _opened(kind, step, event), True
        elif item is None:
            continue
        elif isinstance(step, Move) and step.stage != item["stage"] and \
                (not step.only_from or item["stage"] in step.only_from):
            item.update(stage=step.stage, entry_version=event.originator_version, entered_at=micros(event.occurred_at))
            moved = True
        elif isinstance(step, Revise) and step.owner is not None:
            item["owner"] = step.owner
    if item is not None and isinstance(event, (Ticket.Resolved, Ticket.Reopened, Ticket.Closed)):
        item["first_span"] = 0
        if isinstance(event, Ticket.Closed) and item["stage"] != CLOSED:
            item.update(stage=CLOSED, entry_version=event.originator_version, entered_at=micros(event.occurred_at))
            moved = True
    return item, moved


def _opened(kind: str, step: Enter, event: Any) -> ItemRow:
    name = {"deal": "title", "lead": "name", "ticket": "subject"}[kind]
    at = micros(event.occurred_at)
    return ItemRow(item_id=str(step.item_id), kind=kind, pipeline=step.pipeline, stage=step.stage,
                   entry_version=event.originator_version, entered_at=at, opened_at=at, first_span=1,
                   priority=getattr(event, "priority", ""), owner=step.owner,
                   customer_id=str(step.customer_id or ""), name=mark(getattr(event, name) or ""),
                   company=mark(getattr(event, "company", "") or ""), labels="")


def entry_of(item: ItemRow) -> StageEntry:
    """The item's current stage entry, for the reminder rule."""
    return StageEntry(UUID(item["item_id"]), item["kind"], item["pipeline"], item["stage"], item["entry_version"],
                      from_micros(item["entered_at"]), from_micros(item["opened_at"]), bool(item["first_span"]),
                      item["priority"])
