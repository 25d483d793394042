"""The reminders read model's write side: items' stage entries (from the funnel's steps), the thresholds each
open entry has (pipelines' `remind_after_days`, tickets' service levels), and the reminders emitted.

`reminder_due` is the reminder process's work list: a row per (item, entry, threshold) with its due time and
state — open until a reminder is emitted for it, or closed when the item leaves the entry or the stage's
thresholds change — indexed by (state, due_at), so the process asks only for what is due and not yet done,
however long the history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson

from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.personal_data import mark
from domain.pipeline import Pipeline
from domain.reminder_rules import Reminder, entry_reminder_id, is_sla, reminder_id, thresholds
from domain.ticket import Ticket
from projections.funnel.steps import FUNNEL_EVENTS
from projections.read_model import ReadModel, Rows
from projections.reminders.rows import (CUSTOMERS, DUE, ENTRIES, ITEMS, REMINDERS, STAGES, STAYING, CustomerRow,
                                        DueRow, EntryRow, ItemRow, ReminderRow, StageRow, TABLES)
from projections.reminders.tracking import entry_of, track
from projections.tables import micros, span_class

ITEM_EVENTS = (*FUNNEL_EVENTS, Ticket.Closed)
ITEM_BASES = (Deal.Event, Lead.Event, Ticket.Event)


class RemindersReadModel(ReadModel):
    name = "reminders"
    tables = TABLES

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """Every item of the batch in one query per 400 (one each, lazily, was a third of the rebuild), the due
        rows of the entries its events may begin (an entry is named by the version of the event that began
        it: one query per threshold was half of the reminder process's step at 50 due a second) or end, and
        the entries its reminders belong to."""
        items = [e for e in events if isinstance(e, ITEM_BASES)]
        emitted = [e for e in events if isinstance(e, Reminder.Emitted)]
        rows.prefetch(ITEMS, [(str(e.originator_id),) for e in items]
                      + [(str(e.item_id),) for e in emitted if is_sla(e.threshold)])
        known = [rows.get(ITEMS, str(e.originator_id)) for e in items]
        rows.prefetch_prefixes(DUE, [(str(e.originator_id), e.originator_version) for e in items]  # entries begun
                               + [(item["item_id"], item["entry_version"]) for item in known if item and item["labels"]])
        rows.prefetch(ENTRIES, [(str(e.item_id), e.entry_version) for e in emitted])

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        found: dict[type, Callable[[Any, Rows], None]] = {
            cls: _item_event for cls in ITEM_EVENTS if issubclass(cls, ITEM_BASES)}
        return {**found, Customer.Registered: _customer, Pipeline.Defined: _defined,
                Pipeline.StageRemindersSet: _reminders_set, Reminder.Emitted: _emitted}


def _item_event(event: Any, rows: Rows) -> None:
    item = rows.get(ITEMS, str(event.originator_id))
    left = None if item is None else EntryRow(item_id=item["item_id"], entry_version=item["entry_version"],
                                              pipeline=item["pipeline"], stage=item["stage"],
                                              entered_at=item["entered_at"], left_at=STAYING)
    span = None if item is None else item["first_span"]
    item, moved = track(item, event)
    if item is None:
        return
    if moved:
        if left is not None:  # its entry ends here, and its thresholds not reminded of with it
            rows.put(ENTRIES, {**left, "left_at": micros(event.occurred_at)})
            _close(left["item_id"], left["entry_version"], item["labels"], rows)
            _end_reminders(item, left["entry_version"], micros(event.occurred_at), rows)
            item["labels"] = ""
        rows.put(ENTRIES, EntryRow(item_id=item["item_id"], entry_version=item["entry_version"],
                                   pipeline=item["pipeline"], stage=item["stage"], entered_at=item["entered_at"],
                                   left_at=STAYING))
        _schedule(item, rows, fresh=True)
    elif span is not None and span != item["first_span"]:  # a ticket's service levels no longer apply
        _schedule(item, rows)
    rows.put(ITEMS, item)


def _close(item_id: str, version: int, labels: str, rows: Rows, keep: frozenset[str] = frozenset()) -> None:
    for label in filter(None, labels.split(",")):
        due = rows.get(DUE, item_id, version, label)
        if due is not None and due["state"] == "open" and label not in keep:
            rows.put(DUE, {**due, "state": "closed"})


def _end_reminders(item: ItemRow, version: int, left_at: int, rows: Rows) -> None:
    """The reminders of the entry the item leaves now get their end (and span class), found by their derived
    ids from the entry's labels (an SLA one also under its entry's id, as logs before one-per-clock hold it)."""
    customer = UUID(item["customer_id"]) if item["customer_id"] else None
    item_id = UUID(item["item_id"])
    for label in filter(None, item["labels"].split(",")):
        due = rows.get(DUE, item["item_id"], version, label)
        if due is None or due["state"] != "emitted":
            continue
        for candidate in {reminder_id(item_id, version, label, customer), entry_reminder_id(item_id, version, label,
                                                                                          customer)}:
            reminder = rows.get(REMINDERS, str(candidate))
            if reminder is not None and reminder["entry_version"] == version and reminder["left_at"] == STAYING:
                rows.put(REMINDERS, {**reminder, "left_at": left_at, "span": span_class(reminder["emitted_at"],
                                                                                       left_at)})


def _schedule(item: ItemRow, rows: Rows, fresh: bool = False) -> None:
    """The thresholds of the item's current entry (its stage's and, for tickets, service levels): due rows for
    the new ones, the dropped ones closed. `fresh`: a new entry, which has none to close."""
    days = _days(rows, item["pipeline"], item["stage"])
    if not days and item["kind"] != "ticket" and not item["labels"]:
        return  # nothing to remind of (most entries: ≈ 40 % of this read model's rebuild was spent here)
    key = (item["item_id"], item["entry_version"])
    found = thresholds(entry_of(item), days)
    labels = {t.label for t in found}
    if not fresh:
        _close(*key, item["labels"], rows, keep=frozenset(labels))
    for threshold in found:  # looked up even for a new entry: a consumer fed by partition may bring its reminder first
        if rows.get(DUE, *key, threshold.label) is None:
            state = "emitted" if _clock_reminded(item, threshold.label, rows) else "open"
            rows.put(DUE, DueRow(item_id=key[0], entry_version=key[1], threshold=threshold.label,
                                 due_at=micros(threshold.due_at), state=state))
    item["labels"] = ",".join(sorted(labels))


def _clock_reminded(item: ItemRow, label: str, rows: Rows) -> bool:
    """Whether an SLA threshold was reminded of in an earlier entry of the same clock (one reminder per
    ticket, clock and threshold: `domain.reminder_rules.reminder_id`), found by its derived id."""
    if not is_sla(label):
        return False
    customer = UUID(item["customer_id"]) if item["customer_id"] else None
    derived = reminder_id(UUID(item["item_id"]), item["entry_version"], label, customer)
    return rows.get(REMINDERS, str(derived)) is not None


def _days(rows: Rows, pipeline: str, stage: str) -> list[int | float]:
    row = rows.get(STAGES, pipeline, stage)
    return orjson.loads(row["remind_after_days"]) if row else []


def _customer(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, CustomerRow(customer_id=str(event.originator_id), name=mark(event.name or ""),
                                    company=mark(event.company or ""), registered_at=micros(event.occurred_at)))


def _defined(event: Pipeline.Defined, rows: Rows) -> None:
    for stage in event.stages:
        if stage.get("remind_after_days"):
            _set_days(event.key, stage["key"], stage["remind_after_days"], rows)


def _reminders_set(event: Pipeline.StageRemindersSet, rows: Rows) -> None:
    _set_days(event.pipeline, event.stage, event.remind_after_days, rows)


def _set_days(pipeline: str, stage: str, days: list[int | float], rows: Rows) -> None:
    """The stage's thresholds, and those of the items in it now (a stage may get them while items stay in it,
    or before its pipeline's definition reaches the log: the standard ones can be met in a lead first)."""
    rows.put(STAGES, StageRow(pipeline=pipeline, stage=stage, remind_after_days=orjson.dumps(list(days)).decode()))
    staying = rows.select(f"SELECT item_id FROM {ITEMS.name} WHERE pipeline = ? AND stage = ?", [pipeline, stage])
    for (item_id,) in staying:
        item = rows.get(ITEMS, item_id)
        if item is not None:
            _schedule(item, rows)
            rows.put(ITEMS, item)


def _emitted(event: Reminder.Emitted, rows: Rows) -> None:
    item_id, version, emitted_at = str(event.item_id), event.entry_version, micros(event.occurred_at)
    entry = rows.get(ENTRIES, item_id, version)  # left already when saved just after the item moved on
    left_at = STAYING if entry is None else entry["left_at"]
    rows.put(REMINDERS, ReminderRow(reminder_id=str(event.originator_id), item_id=item_id, entry_version=version,
                                    threshold=event.threshold, due_at=micros(event.due_at), emitted_at=emitted_at,
                                    owner=event.owner, left_at=left_at, span=span_class(emitted_at, left_at)))
    rows.put(DUE, DueRow(item_id=item_id, entry_version=version, threshold=event.threshold,
                         due_at=micros(event.due_at), state="emitted"))
    item = rows.get(ITEMS, item_id) if is_sla(event.threshold) else None
    if item is not None and item["entry_version"] != version:
        # saved just after the ticket moved on (the process checked the log before the move): its clock's
        # threshold is reminded of, so the new entry's row for it is no longer to do
        due = rows.get(DUE, item_id, item["entry_version"], event.threshold)
        if due is not None and due["state"] == "open":
            rows.put(DUE, {**due, "state": "emitted"})
