"""The campaigns read model folded set-based: SQL over the flat log (`log_events`, services/bulk/log_reader.py)
that builds the very rows the handlers (`handlers`) write, for a bulk rebuild (issue 14; the funnel's
`set_based` explains the form: named SELECTs in DuckDB's dialect, each materialised under its name).

The handlers store facts, not figures, so most tables are one row per event:

- a campaign's plan, status changes (planned, launched, closed) and costs, keyed by the campaign's version;
- a response: on the respondent's stream (`Lead`/`Customer.RespondedToCampaign`: the respondent is the stream,
  the campaign a field) or, in logs from before home partitions, on the campaign's (`Campaign.ResponseRecorded`,
  naming a customer, a lead or both) — keyed by the stream that holds it;
- a customer's registration, a deal's opening, and each of its amounts (opening, change), wins, losses and
  reopenings, in version order, a win after a reopening being a row of its own.

The one row changed in place is a lead's: captured, then qualified, converted (into a customer) and
disqualified — each the last such event in version order (`arg_max`), as the handler's `_replace` keeps the
last. Nothing joins campaigns to what names them: a lead, deal or response naming a campaign never planned
keeps its id, as the handlers' rows do; a forgotten customer keeps its rows (no personal field is stored).
Leads' and customers' properties over time are `versioned_properties.record_changes`' rule (`property_fold_steps`).
The summed tables (`campaigns_steps`, `campaigns_tallies`: each lead's and customer's share of the report over
time, and its sums per period) are derived from the fact tables by `summed_tables.derive` (Python: a customer's
first win and touches), which the runner calls on the fact tables' steps (`SUMMED_AFTER`).
Events stored under an older `class_version` arrive upcast by the log reader, as the handlers see them.

`CHECKS` find the first fact the handlers refuse (a lead changed before it was captured: their assert) or could
only fail on or turn into something else (a missing instant, amount or id: `micros`/`cents` raise, `str(None)`
would write "None"; a property value that is not text); the runner then hands the read model over to its
handlers rather than write what SQL made of it.
"""

from __future__ import annotations

from domain.campaign import CLOSED, LAUNCHED, PLANNED
from domain.pipeline import LOST, WON
from projections.campaigns.handlers import (COSTS, CUSTOMERS, DEAL_EVENTS, DEALS, LEADS, PLANS, PROPERTIES, RESPONSES,
                                            STATUSES)
from projections.campaigns.rows import AMOUNT, REOPENED
from projections.campaigns.summed_tables import SUMMED_TABLES
from projections.tables import cents_sql, micros_sql
from projections.versioned_properties import property_fold_steps

_EVENTS = ("Campaign.Planned", "Campaign.Launched", "Campaign.Closed", "Campaign.CostRecorded",
           "Campaign.ResponseRecorded", "Lead.RespondedToCampaign", "Customer.RespondedToCampaign", "Lead.Captured",
           "Lead.Qualified", "Lead.Converted", "Lead.Disqualified", "Customer.Registered", "Lead.PropertiesChanged",
           "Customer.PropertiesChanged", "Deal.Opened", "Deal.AmountChanged", "Deal.Won", "Deal.Lost", "Deal.Reopened")
"""The events the handlers read (`CampaignsReadModel.handlers`, by kind and name)."""

_FIELDS = ("occurred_at", "name", "channel", "budget", "currency", "amount", "new_amount", "kind", "customer_id",
           "lead_id", "campaign_id", "region", "industry")
"""The state's fields the fold reads (each event has some of them; the others are NULL)."""

_ALIASES = {"kind": "response_kind", "name": "campaign_name"}  # not the log's `kind`, nor a property's `name`

LOG = f"""
SELECT position, aggregate_id, version, kind, event, occurred_at, {micros_sql('occurred_at')} AS "at",
       {', '.join(_ALIASES.get(name, name) for name in _FIELDS[1:])},
       CASE WHEN event = 'PropertiesChanged' THEN json_extract(state, '$.changes') END AS changes
FROM (SELECT "position" AS position, aggregate_id, version, kind, event, state,
             {', '.join(f"fields[{i + 1}] AS {_ALIASES.get(name, name)}" for i, name in enumerate(_FIELDS))}
      FROM (SELECT *, json_extract_string(state, [{', '.join(f"'$.{name}'" for name in _FIELDS)}]) AS fields
            FROM log_events WHERE kind || '.' || event IN ({', '.join(f"'{e}'" for e in _EVENTS)})) AS l) AS e
"""
# DuckDB parses each state once for all fields (the list form of json_extract_string, as the funnel's log).

PLANS_ = f"""
SELECT aggregate_id AS campaign_id, campaign_name AS name, channel, {cents_sql('budget')} AS budget_cents, currency, "at" AS planned_at
FROM campaigns_log WHERE kind = 'Campaign' AND event = 'Planned'
"""

STATUSES_ = f"""
SELECT aggregate_id AS campaign_id, version AS seq, "at" AS occurred_at,
       CASE event WHEN 'Planned' THEN '{PLANNED}' WHEN 'Launched' THEN '{LAUNCHED}' ELSE '{CLOSED}' END AS status
FROM campaigns_log WHERE kind = 'Campaign' AND event IN ('Planned', 'Launched', 'Closed')
"""

COSTS_ = f"""
SELECT aggregate_id AS campaign_id, version AS seq, "at" AS occurred_at, {cents_sql('amount')} AS amount_cents
FROM campaigns_log WHERE kind = 'Campaign' AND event = 'CostRecorded'
"""

RESPONSES_ = """
SELECT CASE WHEN kind = 'Campaign' THEN aggregate_id ELSE campaign_id END AS campaign_id, version AS seq,
       "at" AS occurred_at, response_kind AS kind,
       CASE kind WHEN 'Campaign' THEN customer_id WHEN 'Customer' THEN aggregate_id END AS customer_id,
       CASE kind WHEN 'Campaign' THEN lead_id WHEN 'Lead' THEN aggregate_id END AS lead_id,
       aggregate_id AS stream_id
FROM campaigns_log WHERE event IN ('ResponseRecorded', 'RespondedToCampaign')
"""
# The respondent's own stream names only the campaign: the respondent is the stream (`_lead_responded`,
# `_customer_responded`); the campaign's stream names the respondent(s) (`_response_recorded`).

LEAD_STEPS = """
SELECT aggregate_id AS lead_id,
       arg_max("at", version) FILTER (WHERE event = 'Qualified') AS qualified_at,
       arg_max("at", version) FILTER (WHERE event = 'Converted') AS converted_at,
       arg_max(customer_id, version) FILTER (WHERE event = 'Converted') AS customer_id,
       arg_max("at", version) FILTER (WHERE event = 'Disqualified') AS disqualified_at
FROM campaigns_log WHERE kind = 'Lead' AND event IN ('Qualified', 'Converted', 'Disqualified')
GROUP BY aggregate_id
"""

LEADS_ = """
SELECT c.aggregate_id AS lead_id, c.campaign_id, c."at" AS captured_at, s.qualified_at, s.converted_at, s.customer_id,
       s.disqualified_at, c.region, c.industry
FROM campaigns_log c LEFT JOIN campaigns_lead_steps s ON s.lead_id = c.aggregate_id
WHERE c.kind = 'Lead' AND c.event = 'Captured'
"""

CUSTOMERS_ = """
SELECT aggregate_id AS customer_id, channel, campaign_id, "at" AS registered_at, region, industry
FROM campaigns_log WHERE kind = 'Customer' AND event = 'Registered'
"""

DEALS_ = """
SELECT aggregate_id AS deal_id, customer_id, campaign_id, lead_id, "at" AS opened_at, currency
FROM campaigns_log WHERE kind = 'Deal' AND event = 'Opened'
"""

DEAL_EVENTS_ = f"""
SELECT aggregate_id AS deal_id, version AS seq, "at" AS occurred_at,
       CASE event WHEN 'Opened' THEN '{AMOUNT}' WHEN 'AmountChanged' THEN '{AMOUNT}' WHEN 'Won' THEN '{WON}'
                  WHEN 'Lost' THEN '{LOST}' ELSE '{REOPENED}' END AS kind,
       CASE event WHEN 'Opened' THEN {cents_sql('amount')} WHEN 'AmountChanged' THEN {cents_sql('new_amount')} END
           AS amount_cents
FROM campaigns_log WHERE kind = 'Deal'
"""

STEPS: tuple[tuple[str, str], ...] = (
    ("campaigns_log", LOG),
    (PLANS.name, PLANS_),
    (STATUSES.name, STATUSES_),
    (COSTS.name, COSTS_),
    (RESPONSES.name, RESPONSES_),
    ("campaigns_lead_steps", LEAD_STEPS),
    (LEADS.name, LEADS_),
    (CUSTOMERS.name, CUSTOMERS_),
    (DEALS.name, DEALS_),
    (DEAL_EVENTS.name, DEAL_EVENTS_),
    *property_fold_steps("campaigns", "campaigns_log"),  # leads' and customers' only: the log holds no other
)
"""The fold, in order: each SELECT reads `log_events` or earlier steps by name. The fact tables' steps carry
their tables' names, so that `summed_tables.derive`, written for the store, reads them in DuckDB as it is."""

SUMMED_AFTER = STEPS[-1][0]
"""The step after which (the last: the checks read every step) the runner derives the summed tables from the fact tables (`summed_tables.derive`,
Python: a customer's first win and touches) and gives them to the SQL as `campaigns_<table>_rows`."""

TABLES: dict[str, str] = {
    **{table.name: table.name for table in (PLANS, STATUSES, COSTS, RESPONSES, LEADS, CUSTOMERS, DEALS, DEAL_EVENTS)},
    PROPERTIES.versions.name: "campaigns_properties_rows", PROPERTIES.current.name: "campaigns_current_properties_rows",
    **{table.name: f"{table.name}_rows" for table in SUMMED_TABLES},
}
"""Read-model table → the step with its rows."""

_REQUIRED = {
    "occurred_at": "TRUE",
    "budget": "kind = 'Campaign' AND event = 'Planned'",
    "amount": "(kind = 'Campaign' AND event = 'CostRecorded') OR (kind = 'Deal' AND event = 'Opened')",
    "new_amount": "event = 'AmountChanged'",
    "campaign_id": "event = 'RespondedToCampaign'",
    "customer_id": "(kind = 'Lead' AND event = 'Converted') OR (kind = 'Deal' AND event = 'Opened')",
    "changes": "event = 'PropertiesChanged'",
}
"""Per field, the events whose handler reads it: `micros` and `cents` raise on nothing, `str(None)` would write
"None", `record_changes` reads an object (`changes` must be one)."""
_MISSING = {"changes": "json_type(changes) IS DISTINCT FROM 'OBJECT'"}


def _missing(name: str) -> str:
    return _MISSING.get(name, f"{name} IS NULL")


CHECKS: dict[str, str] = {
    "a lead changed before it was captured": """
SELECT MIN(e.position) FROM campaigns_log e
WHERE e.kind = 'Lead' AND e.event IN ('Qualified', 'Converted', 'Disqualified')
  AND NOT EXISTS (SELECT 1 FROM campaigns_leads l WHERE l.lead_id = e.aggregate_id)""",
    "a deal changed before it was opened": """
SELECT MIN(e.position) FROM campaigns_log e
WHERE e.kind = 'Deal' AND e.event <> 'Opened'
  AND NOT EXISTS (SELECT 1 FROM campaigns_deals d WHERE d.deal_id = e.aggregate_id)""",
    "an event without a field its handler reads": f"""
SELECT MIN(position) FROM campaigns_log
WHERE {' OR '.join(f"(({when}) AND {_missing(name)})" for name, when in _REQUIRED.items())}""",
    "a property set to something else than text": """
SELECT MIN(position) FROM (SELECT position, changes, UNNEST(json_keys(changes)) AS property FROM campaigns_log
                           WHERE event = 'PropertiesChanged' AND json_type(changes) = 'OBJECT') AS p
WHERE json_type(changes, '$.' || property) IS DISTINCT FROM 'VARCHAR'""",
}
"""The handlers' asserts (`handlers._lead`, `_deal_event`) and what they could only fail on or turn into other rows, as the first
log position breaking each (`services/bulk`: the handlers rebuild the campaigns then, with their own outcome)."""
