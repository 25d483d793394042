"""The customer timeline folded set-based: SQL over the flat log (`log_events`) that builds the very rows the
handlers (`handlers`, `summaries`) write, for a bulk rebuild (issue 14; the funnel's `set_based` explains the
form: named SELECTs in DuckDB's dialect, `PORTABLE_STEPS` for other engines through sqlglot).

Every event is one entry, so there is little to fold: a deal's or ticket's entries go to the customer its
opening named and are called by its (sealed) title or subject, a campaign response by the campaign's name.
Each summary is `summaries`' text, written as SQL: personal text stays sealed as `mark` marks it
(`⟦pii:v1:…⟧`), `_note` adds " (…)" to what is not empty, properties read in the order the event holds them,
and `one_line` folds Python's white space (the characters `str.split()` splits on).
"""

from __future__ import annotations

from domain.personal_data import PREFIX
from projections.tables import micros_sql
from projections.timeline.rows import CAMPAIGNS, CUSTOMERS, DEALS, ENTRIES, LEADS, TICKETS

_FIELDS = ("occurred_at", "timestamp", "actor", "name", "company", "region", "industry", "channel", "email", "phone",
           "direction", "summary", "tag", "marketing", "owner", "rule", "note", "reason", "customer_id", "deal_id",
           "title", "amount", "currency", "pipeline", "stage", "from_stage", "to_stage", "old_amount", "new_amount",
           "old_owner", "new_owner", "subject", "priority", "assignee", "from_status", "to_status", "message",
           "resolution", "score", "comment", "kind", "lead_id", "campaign_id")
_WHITE = (r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}"
          r"\x{3000}]+")  # what Python's str.split() splits on


_ALIASES = {"timestamp": "recorded_text", "kind": "response_kind"}  # not to meet keywords or the log's `kind`


def _alias(name: str) -> str:
    return _ALIASES.get(name, name)


def _events(fields: str) -> str:
    return f"""
SELECT position, aggregate_id, version, kind || '.' || event AS type, {micros_sql('occurred_at')} AS occurred,
       {micros_sql('recorded_text')} AS recorded,
       {', '.join(_alias(name) for name in _FIELDS if name not in ('occurred_at', 'timestamp'))},
       CASE WHEN event = 'PropertiesChanged' THEN json_extract(state, '$.changes') END AS changes
FROM (SELECT "position" AS position, aggregate_id, version, kind, event, state, {fields}
      FROM log_events WHERE kind IN ('Customer', 'Lead', 'Deal', 'Ticket', 'Campaign')) AS e
"""


EVENTS = _events(", ".join(f"fields[{i + 1}] AS {_alias(name)}" for i, name in enumerate(_FIELDS))).replace(
    "FROM log_events", "FROM (SELECT *, json_extract_string(state, [" + ", ".join(f"'$.{n}'" for n in _FIELDS)
    + "]) AS fields FROM log_events) AS l")
EVENTS_PORTABLE = _events(", ".join(f"json_extract_string(state, '$.{name}') AS {_alias(name)}" for name in _FIELDS))


def _mark(value: str) -> str:
    return f"CASE WHEN {value} LIKE '{PREFIX}%' THEN '⟦' || {value} || '⟧' ELSE {value} END"


def _note(value: str) -> str:
    return f"CASE WHEN {value} <> '' THEN ' (' || {value} || ')' ELSE '' END"


_PROPERTIES = ("array_to_string(list_transform(json_keys(changes), lambda k: CASE WHEN json_extract_string(changes, "
               "'$.' || k) <> '' THEN k || '=' || json_extract_string(changes, '$.' || k) ELSE k || ' removed' END), "
               "', ')")

SUMMARIES: dict[str, str] = {
    "Customer.Registered": f"'registered ' || {_mark('name')} || {_note(_mark('company'))} || ' · ' || region "
                           "|| ' · ' || industry || ' · via ' || channel",
    "Customer.ContactDetailsChanged": f"'contact details changed: email ' || COALESCE(NULLIF({_mark('email')}, ''), "
                                      f"'–') || ', phone ' || COALESCE(NULLIF({_mark('phone')}, ''), '–')",
    "Customer.TouchLogged": f"channel || ' ' || direction || ': ' || {_mark('summary')}",
    "Customer.TagAdded": f"'tag added: ' || {_mark('tag')}",
    "Customer.TagRemoved": f"'tag removed: ' || {_mark('tag')}",
    "Customer.PropertiesChanged": f"'properties: ' || {_PROPERTIES}",
    "Customer.ConsentChanged": "'marketing consent ' || CASE WHEN marketing = 'true' THEN 'given' ELSE 'withdrawn' END",
    "Customer.Forgotten": "'forgotten'",
    "Lead.Captured": f"'lead captured: ' || {_mark('name')} || {_note(_mark('company'))} || ' via ' || channel",
    "Lead.Assigned": "'lead assigned to ' || owner || ' (' || rule || ')'",
    "Lead.Contacted": f"'lead contacted by ' || channel || {_note(_mark('summary'))}",
    "Lead.Qualified": f"'lead qualified' || {_note(_mark('note'))}",
    "Lead.Disqualified": f"'lead disqualified (' || {_mark('reason')} || ')'",
    "Lead.PropertiesChanged": f"'lead properties: ' || {_PROPERTIES}",
    "Lead.Converted": "'lead converted into this customer, deal ' || deal_id",
    "Deal.Opened": "o.label || ' · ' || amount || ' ' || currency || ' · ' || pipeline || '/' || stage || ' · owner ' "
                   "|| owner",
    "Deal.StageChanged": f"o.label || ': ' || from_stage || ' → ' || to_stage || {_note(_mark('reason'))}",
    "Deal.AmountChanged": "o.label || ': amount ' || old_amount || ' → ' || new_amount",
    "Deal.OwnerChanged": "o.label || ': owner ' || old_owner || ' → ' || new_owner",
    "Deal.PropertiesChanged": f"o.label || ': ' || {_PROPERTIES}",
    "Deal.Won": f"o.label || ': ' || from_stage || ' → won' || {_note(_mark('note'))}",
    "Deal.Lost": f"o.label || ': ' || from_stage || ' → lost (' || {_mark('reason')} || ')'",
    "Deal.Reopened": f"o.label || ': reopened in ' || stage || ' (' || {_mark('reason')} || ')'",
    "Ticket.Opened": "o.label || ' · ' || priority || ' · via ' || channel",
    "Ticket.Assigned": "o.label || ': assigned to ' || assignee",
    "Ticket.StatusChanged": "o.label || ': ' || from_status || ' → ' || to_status",
    "Ticket.CustomerReplied": f"o.label || ': customer replied (' || {_mark('message')} || ')'",
    "Ticket.Resolved": f"o.label || ': resolved (' || {_mark('resolution')} || ')'",
    "Ticket.SatisfactionRated": f"o.label || ': rated ' || score || '/5' || {_note(_mark('comment'))}",
    "Ticket.Reopened": f"o.label || ': reopened (' || {_mark('reason')} || ')'",
    "Ticket.Closed": "o.label || ': closed'",
    "Campaign.ResponseRecorded": "'campaign ' || c.campaign_name || ': ' || e.response_kind",
    "Lead.RespondedToCampaign": "'campaign ' || c.campaign_name || ': ' || e.response_kind",
    "Customer.RespondedToCampaign": "'campaign ' || c.campaign_name || ': ' || e.response_kind",
}
"""Event type → its entry's summary (`summaries`), before `one_line`; `o.label` is the deal's title or the
ticket's subject, sealed as the opening stored it ("deal opened: " and "ticket opened: " are added there)."""

OPENINGS = f"""
SELECT aggregate_id AS opened_id, customer_id AS opened_customer,
       CASE WHEN type = 'Deal.Opened' THEN 'deal opened: ' ELSE 'ticket opened: ' END AS prefix,
       {_mark("CASE WHEN type = 'Deal.Opened' THEN title ELSE subject END")} AS label
FROM timeline_events WHERE type IN ('Deal.Opened', 'Ticket.Opened')
"""
CAMPAIGN_NAMES = "SELECT aggregate_id AS planned_id, name AS campaign_name FROM timeline_events WHERE type = 'Campaign.Planned'"

_SUMMARY = "CASE e.type " + " ".join(f"WHEN '{t}' THEN {sql}" for t, sql in SUMMARIES.items()) + " END"

_FOLDED = (r"^ | $|  |[\t\n\f\r\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
           r"\x{205f}\x{3000}]")  # what `one_line` changes: white space at an end, in a run, or other than " "
ENTRIES_ = f"""
SELECT owner_id, subject_id, seq, stream_id, recorded_at, occurred_at, kind, actor,
       CASE WHEN regexp_matches(summary, '{_FOLDED}')  -- rarely: matching is ≈ 1.4 µs an entry cheaper than replacing
            THEN regexp_replace(regexp_replace(summary, '^{_WHITE}|{_WHITE}$', '', 'g'), '{_WHITE}', ' ', 'g')
            ELSE summary END AS summary
FROM (SELECT CASE WHEN e.type LIKE 'Deal.%' OR e.type LIKE 'Ticket.%' THEN o.opened_customer
                  WHEN e.type = 'Campaign.ResponseRecorded' THEN COALESCE(e.customer_id, e.lead_id)
                  ELSE e.aggregate_id END AS owner_id,
             CASE WHEN e.type LIKE '%.RespondedToCampaign' THEN e.campaign_id ELSE e.aggregate_id END AS subject_id,
             e.version AS seq, e.aggregate_id AS stream_id, e.recorded AS recorded_at, e.occurred AS occurred_at,
             e.type AS kind, e.actor,
             CASE WHEN e.type IN ('Deal.Opened', 'Ticket.Opened') THEN o.prefix ELSE '' END || {_SUMMARY} AS summary
      FROM timeline_events e
      LEFT JOIN timeline_openings o ON o.opened_id = e.aggregate_id
      LEFT JOIN timeline_campaign_names c ON c.planned_id = CASE WHEN e.type = 'Campaign.ResponseRecorded' THEN e.aggregate_id ELSE e.campaign_id END
      WHERE e.type IN ({', '.join(f"'{t}'" for t in SUMMARIES)})) AS x
"""

STEPS: tuple[tuple[str, str], ...] = (
    ("timeline_events", EVENTS),
    ("timeline_openings", OPENINGS),
    ("timeline_campaign_names", CAMPAIGN_NAMES),
    ("timeline_entries_rows", ENTRIES_),
    ("timeline_customers_rows", "SELECT aggregate_id AS customer_id, occurred AS registered_at FROM timeline_events "
                                "WHERE type = 'Customer.Registered'"),
    ("timeline_leads_rows", "SELECT aggregate_id AS lead_id, customer_id, occurred AS converted_at FROM timeline_events "
                            "WHERE type = 'Lead.Converted'"),
    ("timeline_deals_rows", "SELECT opened_id AS deal_id, opened_customer AS customer_id, label AS title "
                            "FROM timeline_openings WHERE prefix = 'deal opened: '"),
    ("timeline_tickets_rows", "SELECT opened_id AS ticket_id, opened_customer AS customer_id, label AS subject "
                              "FROM timeline_openings WHERE prefix = 'ticket opened: '"),
    ("timeline_campaigns_rows", "SELECT planned_id AS campaign_id, campaign_name AS name FROM timeline_campaign_names"),
)
PORTABLE_STEPS: tuple[tuple[str, str], ...] = (("timeline_events", EVENTS_PORTABLE), *STEPS[1:])
TABLES: dict[str, str] = {ENTRIES.name: "timeline_entries_rows", CUSTOMERS.name: "timeline_customers_rows",
                          LEADS.name: "timeline_leads_rows", DEALS.name: "timeline_deals_rows",
                          TICKETS.name: "timeline_tickets_rows", CAMPAIGNS.name: "timeline_campaigns_rows"}
CHECKS: dict[str, str] = {
    "a response to a campaign before it was planned": """
SELECT MIN(e.position) FROM timeline_events e
LEFT JOIN timeline_events p ON p.type = 'Campaign.Planned'
     AND p.aggregate_id = CASE WHEN e.type = 'Campaign.ResponseRecorded' THEN e.aggregate_id ELSE e.campaign_id END
WHERE (e.type LIKE '%.RespondedToCampaign' OR e.type = 'Campaign.ResponseRecorded')
  AND (p.position IS NULL OR p.position > e.position)""",
    "a deal or ticket changed before it was opened": """
SELECT MIN(e.position) FROM timeline_events e LEFT JOIN timeline_openings o ON o.opened_id = e.aggregate_id
WHERE (e.type LIKE 'Deal.%' OR e.type LIKE 'Ticket.%') AND o.opened_id IS NULL""",
}
"""The handlers' asserts (`_responded`, `_known`), as the first log position breaking each (`services/bulk`)."""

