"""The reminders read model: reminders open as of any instant, and the reminder process's work list.

`rows` holds the tables (items and their stage entries, thresholds due, reminders emitted, customers' sealed
names, stages' thresholds); `handlers` (write side) keeps them from the items' events, the pipelines'
thresholds and `Reminder.Emitted`; `queries` answers the reminders open at T and what is due now. The rule of
what is due is `domain.reminder_rules`; the process that emits is `services/reminder_process.py`."""

from __future__ import annotations

from projections.reminders.handlers import RemindersReadModel
from projections.reminders.queries import DueThreshold, OpenReminder, ReminderQueries

__all__ = ["DueThreshold", "OpenReminder", "ReminderQueries", "RemindersReadModel"]
