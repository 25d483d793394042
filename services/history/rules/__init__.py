"""`crm import`'s domain checks: every imported event must be one the commands could have recorded.

The rules are the domain's own functions (`domain.deal.require_open`, `domain.lead.require_status`,
`domain.money.amount`, …), which the aggregates' commands call too; this package only says which of them
guards which event, on which field, and folds each aggregate's events into a compact `Tracked` state (a
slotted record of the few values the rules read: status, stage, pipeline, owner, last business time)
instead of building aggregates: ≈ 240 bytes per aggregate (its id and times included), and no domain event
is built.

The checks come in two halves, so worker processes can do the first:

- `fields.field_facts` (per line, in any process): the rules on one event's own fields (business time and
  actor as `Meta` checks them, amounts ≥ 0, currency, priorities, scores, non-empty text, no NUL),
  and the few values (`facts.Facts`) the second half needs.
- `engine.HistoryRules.check` (in file order, in the importing process): versions, creation first, business
  time in order, channels, regions, industries and loss reasons against the vocabulary in force at their
  line (`facts.TERMS`; defined earlier in the file, in the log, or the defaults), and each aggregate's
  lifecycle (`customer_lifecycle` … `pipeline_lifecycle`, `vocabulary_lifecycle`: status rules, terminal
  states, reopen, stages known in the deal's pipeline, references to customers, leads, campaigns, deals and
  pipelines in the file or already in the log), on the `tracked.Tracked` state.

References may point forward: one command's events are saved aggregate by aggregate (a lead's Converted
precedes its customer's Registered and its deal's Opened) and a file may hold its pipelines last. So a
reference to an aggregate not seen yet waits for its creation (`tracked.Waiting`); the file is refused if it
never comes. To name the FIRST bad line in file order, after a refusal the check reads on (creations only)
while an earlier line still waits for a reference.
"""

from __future__ import annotations

from services.history.rules.engine import HistoryRules, log_holder, log_loader
from services.history.rules.facts import Facts
from services.history.rules.field_checks import FIELD_RULES, field_facts
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked, Waiting

__all__ = ["FIELD_RULES", "Facts", "HistoryRules", "Refusal", "Tracked", "Waiting", "field_facts", "log_holder",
           "log_loader"]
