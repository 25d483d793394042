"""`crm import`'s check of a reminder: its id is the one `domain.reminder_rules.reminder_id` derives from its
item, stage entry and threshold, so that a file cannot hold two reminders for one (item, entry, threshold), nor
take the id of a reminder still to come (whose save would then conflict and be counted as sent: never sent). An
SLA reminder's id derives from its clock (one per ticket, clock and threshold); logs written before hold them
under their stage entry's id, which is accepted too (no reminder to come has it)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.reminder_rules import Reminder, entry_reminder_id, is_sla, reminder_id
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _emitted(rules: Engine, reminder: Tracked, item_id: Any, entry_version: int, threshold: str,
             customer_id: int | None) -> None:
    item, customer = UUID(str(item_id)), None if customer_id is None else UUID(int=customer_id)
    derived = reminder_id(item, entry_version, threshold, customer)
    legacy = entry_reminder_id(item, entry_version, threshold, customer) if is_sla(threshold) else derived
    if rules.subject not in (derived.int, legacy.int):
        raise Refusal("subject", f"the reminder of item {item_id}, stage entry {entry_version}, threshold "
                                 f"{threshold} has the id {derived}, derived from them, not {UUID(int=rules.subject)}")


RULES: dict[type, Rule] = {Reminder.Emitted: _emitted}
