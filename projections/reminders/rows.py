"""The reminders read model's tables: items and their stage entries, thresholds due, reminders emitted, and the
customers' names (sealed) to show items by."""

from __future__ import annotations

from typing import TypedDict

from projections.tables import NOT_ENDED, Table

STAYING = NOT_ENDED  # left_at of an entry the item has not left (µs, far beyond any business time): indexable


class ItemRow(TypedDict):
    item_id: str
    kind: str  # deal, lead, ticket
    pipeline: str
    stage: str  # where it is now (won/lost included)
    entry_version: int  # version of the event that moved it there
    entered_at: int
    opened_at: int
    first_span: int  # 1 while a ticket's service-level targets apply (domain.reminder_rules)
    priority: str
    owner: str
    customer_id: str  # "" for a lead
    name: str  # sealed: a deal's title, a lead's name, a ticket's subject
    company: str  # sealed: a lead's company ("" for deals and tickets: their customer's is shown)
    labels: str  # the thresholds of the current entry with a due row, comma-separated


class EntryRow(TypedDict):
    item_id: str
    entry_version: int
    pipeline: str
    stage: str
    entered_at: int
    left_at: int  # STAYING while the item is in it


class DueRow(TypedDict):
    item_id: str
    entry_version: int
    threshold: str
    due_at: int
    state: str  # open (the process should remind), emitted, or closed (left, or the threshold was removed)


class ReminderRow(TypedDict):
    reminder_id: str
    item_id: str
    entry_version: int
    threshold: str
    due_at: int
    emitted_at: int
    owner: str
    left_at: int  # when the item left the entry (STAYING while it stays, or not known here yet)
    span: int  # projections.tables.span_class(emitted_at, left_at): the index "open at T" reads by


class CustomerRow(TypedDict):
    customer_id: str
    name: str  # sealed
    company: str  # sealed
    registered_at: int


class StageRow(TypedDict):
    pipeline: str
    stage: str
    remind_after_days: str  # JSON list of days


ITEMS = Table("reminder_items", (
    ("item_id", "TEXT"), ("kind", "TEXT"), ("pipeline", "TEXT"), ("stage", "TEXT"), ("entry_version", "BIGINT"),
    ("entered_at", "BIGINT"), ("opened_at", "BIGINT"), ("first_span", "INTEGER"), ("priority", "TEXT"),
    ("owner", "TEXT"), ("customer_id", "TEXT"), ("name", "TEXT"), ("company", "TEXT"), ("labels", "TEXT")),
    ("item_id",), indexes=(("pipeline", "stage"),), row_type=ItemRow)
ENTRIES = Table("reminder_entries", (
    ("item_id", "TEXT"), ("entry_version", "BIGINT"), ("pipeline", "TEXT"), ("stage", "TEXT"),
    ("entered_at", "BIGINT"), ("left_at", "BIGINT")), ("item_id", "entry_version"), row_type=EntryRow)
DUE = Table("reminder_due", (
    ("item_id", "TEXT"), ("entry_version", "BIGINT"), ("threshold", "TEXT"), ("due_at", "BIGINT"), ("state", "TEXT")),
    ("item_id", "entry_version", "threshold"), indexes=(("state", "due_at"),), row_type=DueRow)
REMINDERS = Table("reminders_emitted", (
    ("reminder_id", "TEXT"), ("item_id", "TEXT"), ("entry_version", "BIGINT"), ("threshold", "TEXT"),
    ("due_at", "BIGINT"), ("emitted_at", "BIGINT"), ("owner", "TEXT"), ("left_at", "BIGINT"), ("span", "INTEGER")),
    ("reminder_id",), indexes=(("span", "emitted_at"), ("owner", "span", "emitted_at")), row_type=ReminderRow)
CUSTOMERS = Table("reminder_customers", (
    ("customer_id", "TEXT"), ("name", "TEXT"), ("company", "TEXT"), ("registered_at", "BIGINT")),
    ("customer_id",), row_type=CustomerRow)
STAGES = Table("reminder_stages", (("pipeline", "TEXT"), ("stage", "TEXT"), ("remind_after_days", "TEXT")),
               ("pipeline", "stage"), row_type=StageRow)
TABLES = (ITEMS, ENTRIES, DUE, REMINDERS, CUSTOMERS, STAGES)
