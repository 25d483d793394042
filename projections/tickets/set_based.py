"""The tickets read model folded set-based: SQL over the flat log (`log_events`) that builds the very rows the
handlers (`handlers`) write, for a bulk rebuild (issue 14; the funnel's `set_based` explains the form: named
SELECTs in DuckDB's dialect, `PORTABLE_STEPS` for other engines through sqlglot).

The handlers carry a ticket's row from event to event; here each rule is a window over the ticket's events
in version order (`tickets_steps`):

- every event but a rating begins a status/assignee version, ended by the next one (`LEAD`); its status is
  the last one set (opened and reopened: open, a change: its target, resolved, closed) and its assignee the
  last one assigned (`LAST_VALUE … IGNORE NULLS`), so a rating takes the assignee of the moment too;
- the first response is the first event that answers (`domain.service_levels.responds`: resolving, or
  moving on from open), the first resolution the first `Resolved` — first in version order (`arg_min`);
- a resolution stands from its `Resolved` until the next `Resolved`-or-`Reopened` if that is a reopening;
  the ticket's standing resolution is a `Resolved` nothing of the two followed;
- a won deal is credited to the customer its opening named; a customer's property versions are the
  funnel's rule (a change to what it already is writes nothing; a removal ends the version, opens none,
  and is the current row).

Events stored under an older `class_version` arrive upcast (services/bulk/log_reader.py), as the handlers
see them. Personal text (the subject) stays sealed, marked as `domain.personal_data.mark` marks it.
"""

from __future__ import annotations

from domain.personal_data import PREFIX
from domain.ticket import CLOSED, OPEN, RESOLVED
from projections.tables import micros_sql
from projections.tickets.handlers import (CURRENT_PROPERTIES, CUSTOMERS, DEALS, PROPERTIES, RATINGS, RESOLUTIONS,
                                          TICKETS, VERSIONS, WINS)
from projections.tickets.ticket_tallies import SUMMED_TABLES

_EVENTS = ("Ticket.Opened", "Ticket.Assigned", "Ticket.StatusChanged", "Ticket.Resolved", "Ticket.Reopened",
           "Ticket.Closed", "Ticket.SatisfactionRated", "Deal.Opened", "Deal.Won", "Customer.Registered",
           "Customer.PropertiesChanged")
"""The events the handlers read (`TicketsReadModel.handlers`, by kind and name)."""

_FIELDS = ("occurred_at", "customer_id", "subject", "priority", "assignee", "from_status", "to_status", "score",
           "region", "industry", "channel")
"""The state's fields the fold reads (each event has some of them; the others are NULL)."""


def _log(fields: str) -> str:
    """The events with their fields as columns; `fields` selects them from `state` (written twice, as the funnel's)."""
    return f"""
SELECT aggregate_id, version, kind, event, {micros_sql('occurred_at')} AS "at", customer_id, subject, priority,
       assignee, from_status, to_status, CAST(score AS INTEGER) AS score, region, industry, channel,
       CASE WHEN event = 'PropertiesChanged' THEN json_extract(state, '$.changes') END AS changes
FROM (SELECT aggregate_id, version, kind, event, state, {fields}
      FROM log_events WHERE kind || '.' || event IN ({', '.join(f"'{e}'" for e in _EVENTS)})) AS e
"""


# DuckDB parses each state once for all fields (the list form of json_extract_string, as the funnel's log);
# Spark has no such form, so its text extracts field by field.
LOG = _log(", ".join(f"fields[{i + 1}] AS {name}" for i, name in enumerate(_FIELDS))).replace(
    "FROM log_events", "FROM (SELECT *, json_extract_string(state, [" + ", ".join(f"'$.{n}'" for n in _FIELDS)
    + "]) AS fields FROM log_events) AS l")
LOG_PORTABLE = _log(", ".join(f"json_extract_string(state, '$.{name}') AS {name}" for name in _FIELDS))

_SETS_STATUS = (f"CASE event WHEN 'Opened' THEN '{OPEN}' WHEN 'StatusChanged' THEN to_status "
                f"WHEN 'Resolved' THEN '{RESOLVED}' WHEN 'Reopened' THEN '{OPEN}' WHEN 'Closed' THEN '{CLOSED}' END")
_SO_FAR = "OVER (PARTITION BY aggregate_id ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"

STEPS_ = f"""
SELECT aggregate_id AS ticket_id, version, event, "at", score,
       event <> 'SatisfactionRated' AS begins_version,
       event = 'Resolved' OR (event = 'StatusChanged' AND from_status = '{OPEN}') AS responds,
       LAST_VALUE({_SETS_STATUS} IGNORE NULLS) {_SO_FAR} AS status,
       LAST_VALUE(CASE WHEN event = 'Assigned' THEN assignee END IGNORE NULLS) {_SO_FAR} AS assignee
FROM tickets_log WHERE kind = 'Ticket'
"""
"""Each ticket event with the ticket's status and assignee after it (`_new_version`'s `changes` carried on)."""

OPENINGS = f"""
SELECT aggregate_id AS ticket_id, customer_id, priority,
       CASE WHEN subject LIKE '{PREFIX}%' THEN '⟦' || subject || '⟧' ELSE subject END AS subject, "at" AS opened_at
FROM tickets_log WHERE kind = 'Ticket' AND event = 'Opened'
"""

VERSIONS_ = """
SELECT ticket_id, version AS seq, status, assignee, "at" AS valid_from,
       LEAD("at") OVER (PARTITION BY ticket_id ORDER BY version) AS valid_to
FROM tickets_steps WHERE begins_version
"""

RESOLUTION_EVENTS = """
SELECT ticket_id, version, event, "at",
       LEAD(event) OVER (PARTITION BY ticket_id ORDER BY version) AS next_event,
       LEAD("at") OVER (PARTITION BY ticket_id ORDER BY version) AS next_at
FROM tickets_steps WHERE event IN ('Resolved', 'Reopened')
"""

RESOLUTIONS_ = """
SELECT ticket_id, version AS seq, "at" AS resolved_at, CASE WHEN next_event = 'Reopened' THEN next_at END AS reopened_at
FROM tickets_resolution_events WHERE event = 'Resolved'
"""

RATINGS_ = """
SELECT s.ticket_id, s.version AS seq, o.customer_id, s.assignee, s.score, s."at" AS rated_at
FROM tickets_steps s JOIN tickets_openings o ON o.ticket_id = s.ticket_id
WHERE s.event = 'SatisfactionRated'
"""

FIRSTS = """
SELECT ticket_id, arg_min("at", version) FILTER (WHERE responds) AS first_response_at,
       arg_min("at", version) FILTER (WHERE event = 'Resolved') AS first_resolved_at
FROM tickets_steps GROUP BY ticket_id
"""

TICKETS_ = """
SELECT o.ticket_id, o.customer_id, o.priority, o.subject, o.opened_at, f.first_response_at, f.first_resolved_at,
       v.status, v.assignee, v.seq AS version_seq, v.valid_from AS version_from,
       r.version AS resolution_seq, r."at" AS resolved_at
FROM tickets_openings o
JOIN tickets_firsts f ON f.ticket_id = o.ticket_id
JOIN tickets_versions_rows v ON v.ticket_id = o.ticket_id AND v.valid_to IS NULL
LEFT JOIN tickets_resolution_events r ON r.ticket_id = o.ticket_id AND r.event = 'Resolved' AND r.next_event IS NULL
"""

DEALS_ = "SELECT aggregate_id AS deal_id, customer_id FROM tickets_log WHERE kind = 'Deal' AND event = 'Opened'"

WINS_ = """
SELECT d.deal_id, w.version AS seq, d.customer_id, w."at" AS won_at
FROM tickets_log w JOIN tickets_deals_rows d ON d.deal_id = w.aggregate_id
WHERE w.kind = 'Deal' AND w.event = 'Won'
"""

CUSTOMERS_ = ("SELECT aggregate_id AS customer_id, region, industry, channel FROM tickets_log "
              "WHERE kind = 'Customer' AND event = 'Registered'")

PROPERTY_CHANGES = """
SELECT p.*, LAG(value) OVER (PARTITION BY customer_id, name ORDER BY seq) AS value_before
FROM (SELECT aggregate_id AS customer_id, name, version AS seq, "at", json_extract_string(changes, '$.' || name) AS value
      FROM (SELECT e.*, UNNEST(json_keys(changes)) AS name FROM tickets_log e
            WHERE kind = 'Customer' AND event = 'PropertiesChanged') AS u) AS p
"""

PROPERTY_VERSIONS = """
SELECT customer_id, name, seq, value, "at" AS valid_from,
       LEAD("at") OVER (PARTITION BY customer_id, name ORDER BY seq) AS valid_to
FROM tickets_property_changes WHERE value <> COALESCE(value_before, '')
"""
# The event's value is the property's value after it, so the one before is the last event's (`_properties_changed`
# compares with the current row the same way).

STEPS: tuple[tuple[str, str], ...] = (
    ("tickets_log", LOG),
    ("tickets_steps", STEPS_),
    ("tickets_openings", OPENINGS),
    ("tickets_versions_rows", VERSIONS_),
    ("tickets_resolution_events", RESOLUTION_EVENTS),
    ("tickets_resolutions_rows", RESOLUTIONS_),
    ("tickets_ratings_rows", RATINGS_),
    ("tickets_firsts", FIRSTS),
    ("tickets_tickets_rows", TICKETS_),
    ("tickets_deals_rows", DEALS_),
    ("tickets_wins_rows", WINS_),
    ("tickets_customers_rows", CUSTOMERS_),
    ("tickets_property_changes", PROPERTY_CHANGES),
    ("tickets_property_versions", PROPERTY_VERSIONS),
    ("tickets_properties_rows", "SELECT customer_id, name, seq, value, valid_from, valid_to "
                                "FROM tickets_property_versions WHERE value <> ''"),
    ("tickets_current_properties_rows", "SELECT customer_id, name, seq, value, valid_from "
                                        "FROM tickets_property_versions WHERE valid_to IS NULL"),
)
"""The fold, in order: each SELECT reads `log_events` or earlier steps by name."""
PORTABLE_STEPS: tuple[tuple[str, str], ...] = (("tickets_log", LOG_PORTABLE), *STEPS[1:])
"""The same fold for engines other than DuckDB (`sqlglot.transpile(sql, read="duckdb", write=…)`)."""

TABLES: dict[str, str] = {
    TICKETS.name: "tickets_tickets_rows", VERSIONS.name: "tickets_versions_rows",
    RESOLUTIONS.name: "tickets_resolutions_rows", RATINGS.name: "tickets_ratings_rows", DEALS.name: "tickets_deals_rows",
    WINS.name: "tickets_wins_rows", CUSTOMERS.name: "tickets_customers_rows", PROPERTIES.name: "tickets_properties_rows",
    CURRENT_PROPERTIES.name: "tickets_current_properties_rows",
    **{table.name: f"{table.name}_rows" for table in SUMMED_TABLES},
}
"""Read-model table → the step with its rows (the summed tables': made by `SUMMED_AFTER`'s work)."""

SUMMED_AFTER = STEPS[-1][0]
"""The step after which the runner derives the summed tables from the fact tables' steps
(`ticket_tallies.derive`, Python: each ticket's share at each instant its facts name, by the reference's
rules) and gives them to the SQL as `tickets_<table>_rows`."""

FACT_STEPS = {table.name: TABLES[table.name] for table in (TICKETS, VERSIONS, RESOLUTIONS, RATINGS, WINS)}
"""The fact tables `ticket_tallies.derive` reads → the steps holding their rows."""
