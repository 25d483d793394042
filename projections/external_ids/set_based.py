"""The external ids read model folded set-based: SQL over the flat log (`log_events`) that builds the very rows
the handlers (`handlers`) write, for a bulk rebuild (issue 14; the funnel's `set_based` explains the form).

One row per creation event with an external id: a creation stored before external ids existed arrives upcast
with "" (services/bulk/log_reader.py) and files nothing, as in the handlers; the bare id is what follows the
first colon (`domain.external_ids.bare_id`; "" when there is none, as `str.partition` gives).
"""

from __future__ import annotations

from projections.external_ids.rows import EXTERNAL_IDS
from projections.tables import micros_sql

_KINDS = {"Customer.Registered": "customer", "Lead.Captured": "lead", "Deal.Opened": "deal",
          "Ticket.Opened": "ticket", "Campaign.Planned": "campaign"}
"""The creation events and the kind each files (`handlers.KINDS`, by kind and name)."""

_KIND = "CASE kind || '.' || event " + " ".join(f"WHEN '{e}' THEN '{k}'" for e, k in _KINDS.items()) + " END"

CREATIONS = f"""
SELECT {_KIND} AS kind, json_extract_string(state, '$.external_id') AS external_id, aggregate_id AS record_id,
       json_extract_string(state, '$.occurred_at') AS occurred_at
FROM log_events WHERE kind || '.' || event IN ({', '.join(f"'{e}'" for e in _KINDS)})
"""

ROWS = f"""
SELECT kind, external_id,
       CASE WHEN strpos(external_id, ':') > 0 THEN substr(external_id, strpos(external_id, ':') + 1) ELSE '' END
           AS bare_id,
       record_id, {micros_sql('occurred_at')} AS created_at
FROM external_ids_creations WHERE external_id <> ''
"""

STEPS: tuple[tuple[str, str], ...] = (("external_ids_creations", CREATIONS), ("external_ids_rows", ROWS))
"""The fold, in order (portable as it is: `sqlglot.transpile(sql, read="duckdb", write=…)`)."""
PORTABLE_STEPS = STEPS
TABLES: dict[str, str] = {EXTERNAL_IDS.name: "external_ids_rows"}
