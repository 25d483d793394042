"""The funnel folded set-based: SQL over the flat log (`log_events`, see services/bulk/log_reader.py) that
builds the very rows the handlers (`handlers`, `tally`) write, for a bulk rebuild (issue 14).

The handlers fold each item's events one at a time; here every rule becomes a window over an item's
events in version order:

- a move is accepted when it changes the stage and, for a move only out of some stages (`Move.only_from`:
  a lead's assignment and contact, a ticket's start), when the item is in one of them. Those stages form a
  chain per aggregate (captured < assigned < contacted; feedback < in_progress) and a conditional move is
  allowed exactly from the chain's stages before its target (`CHAINS`, checked against `steps` by the unit
  test): so between two unconditional steps the stage only climbs the chain, and a conditional move is
  accepted when its target is above the segment's start and above every conditional target before it — a
  running MAX, no recursion. The stage after each step is then the target of the last step that set it;
- owner and amount are the last values set (`LAST_VALUE … IGNORE NULLS`); a revision that sets what is
  already there writes nothing, as `_revise`;
- the furthest stage is a running MAX of stage levels over the arrivals whose stage was in the pipeline when
  the item arrived: inserting a stage keeps the order of the others (`tally.levels_of`), so one order — the
  pipeline's latest — compares every pair as it was compared then. The pipelines' stage lists over time are
  reference data of a handful of events, folded in Python (`pipeline_stages`, the handlers' `define` and
  `insert_stage`) and given to the SQL as `funnel_stage_levels`;
- each event's change (`tally`: `n|`, `v|`, `f|`, `l|`, `s|`, `c`) is a sum of delta rows per key, zero sums
  dropped; the tallies sum the changes per pipeline, day or month and home partition (and count them, `n`),
  and keep a period whose sums cancel as `{}`, as `tally.record` does; the closed periods are summed again over
  the partitions (`funnel_sums`, `tally.refresh_sums`). Days and months are those of the read model's zone
  (`zoned_days`: the local wall time from the zone's offset changes, `zone_sql`, as the handlers'
  `zoneinfo`); `STEPS` find UTC's.

The text is DuckDB's dialect, kept to standard window functions and a few JSON/string functions so that
sqlglot transpiles it for Spark (`sqlglot.transpile(sql, read="duckdb", write="spark")`) — but for the one
statement that pulls the fields out of each event's JSON, which DuckDB does in one parse and Spark field by
field (`PORTABLE_STEPS` carries the portable one). `STEPS` are named SELECTs to run in order, each materialised under its name (DuckDB: a temporary table; Spark: a temporary
view); `TABLES` names the step that holds each read-model table's rows, in the table's column order. JSON
columns come out as JSON text: equal to the handlers' once parsed (key order aside).

Not covered (the handlers stop the read model there, the fold does not notice): an item changed before it
entered its pipeline, and a standard pipeline defined with stages in another order than its default.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import Any, NamedTuple

import orjson

from domain.periods import is_utc
from domain.pipeline import DEFAULT_PIPELINES, LOST, WON, pipeline_id
from domain.service_levels import SATISFIED_SCORE
from projections.funnel.report import STAY_CLASS_RATIO
from projections.tables import cents_sql as _cents, days_sql, from_micros, micros_sql
from projections.versioned_properties import property_fold_steps
from projections.zone_sql import duckdb_local_date
from projections.funnel.rows import (CHANGES, CURRENT_PROPERTIES, CUSTOMERS, INTERVALS, ITEMS, PIPELINES, PROPERTIES,
                                     SUMS, TALLIES, VERSIONS, length_band_sql)

CHAINS: dict[str, tuple[str, ...]] = {"Lead": ("captured", "assigned", "contacted"), "Ticket": ("feedback", "in_progress")}
"""Per aggregate, the stages its conditional moves climb: a move to the chain's n-th stage is allowed only
out of the stages before it (`steps`: `Move(…, only_from=…)`)."""

_NOT_IN_CHAIN = 99  # the rank of a stage outside its item's chain: no conditional move leaves it


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _field(name: str) -> str:
    return f"json_extract_string(state, '$.{name}')"


def _chain_rank(kind: str, stage: str) -> str:
    cases = " ".join(f"WHEN {kind} = {_quoted(k)} AND {stage} = {_quoted(s)} THEN {rank}"
                     for k, chain in CHAINS.items() for rank, s in enumerate(chain))
    return f"CASE {cases} ELSE {_NOT_IN_CHAIN} END"


_EVENTS = ("Customer.Registered", "Customer.PropertiesChanged", "Deal.PropertiesChanged", "Lead.PropertiesChanged",
           "Deal.Opened", "Deal.StageChanged", "Deal.Won", "Deal.Lost", "Deal.Reopened", "Deal.AmountChanged",
           "Deal.OwnerChanged", "Lead.Captured", "Lead.Assigned", "Lead.Contacted", "Lead.Qualified",
           "Lead.Disqualified", "Lead.Converted", "Ticket.Opened", "Ticket.Assigned", "Ticket.StatusChanged",
           "Ticket.Resolved", "Ticket.SatisfactionRated", "Ticket.Reopened", "Pipeline.Defined",
           "Pipeline.StageInserted")
"""The events the funnel is made of (`steps.FUNNEL_EVENTS` and the pipelines' `handlers`, by kind and name)."""

_FIELDS = ("occurred_at", "pipeline", "stage", "to_stage", "owner", "amount", "currency", "customer_id", "campaign_id",
           "region", "industry", "channel", "new_amount", "new_owner", "assignee", "to_status", "score")
"""The state's fields the fold reads (each event has some of them; the others are NULL)."""


def _funnel_log(fields: str) -> str:
    """The funnel's events with their fields as columns; `fields` selects them from `state` as columns named
    after them (the one part of the fold written twice, see `PORTABLE_STEPS`)."""
    return f"""
SELECT position, part, aggregate_id, version, kind, event, {micros_sql('occurred_at')} AS "at",
       {days_sql('occurred_at')} AS at_day, {days_sql("substr(occurred_at, 1, 7) || '-01'")} AS at_month,
       pipeline, stage, to_stage, owner, amount, currency, customer_id, campaign_id, region, industry, channel,
       new_amount, new_owner, assignee, to_status, CAST(score AS INTEGER) AS score,
       CASE WHEN event = 'PropertiesChanged' THEN json_extract(state, '$.changes') END AS changes,
       CASE WHEN kind = 'Pipeline' THEN state END AS pipeline_state
FROM (SELECT "position" AS position, "partition" AS part, aggregate_id, version, kind, event, state, {fields}
      FROM log_events
      WHERE kind || '.' || event IN ({', '.join(map(_quoted, _EVENTS))})) AS e
"""


# DuckDB parses each state once for all the fields with the list form of json_extract_string: 0.33 s instead
# of 3.0 s for one call per field on 195k events (measured); Spark has no such form (sqlglot would write
# GET_JSON_OBJECT(state, ARRAY(…))), so its text extracts field by field (`FUNNEL_LOG_PORTABLE`).
FUNNEL_LOG = _funnel_log(", ".join(f"fields[{i + 1}] AS {name}" for i, name in enumerate(_FIELDS))).replace(
    "FROM log_events", "FROM (SELECT *, json_extract_string(state, [" + ", ".join(f"'$.{name}'" for name in _FIELDS)
    + "]) AS fields FROM log_events) AS l")
FUNNEL_LOG_PORTABLE = _funnel_log(", ".join(f"{_field(name)} AS {name}" for name in _FIELDS))

ENTERS = f"""
SELECT e.aggregate_id AS item_id, e.kind, e.version, e.position, e.part, e.at AS opened_at, e.at_day, e.at_month,
       CASE e.kind WHEN 'Deal' THEN e.pipeline WHEN 'Lead' THEN 'marketing' ELSE 'service' END AS pipeline,
       CASE e.kind WHEN 'Deal' THEN e.stage WHEN 'Lead' THEN 'captured' ELSE 'feedback' END AS stage,
       CASE WHEN e.kind = 'Deal' THEN e.owner ELSE '' END AS owner,
       CASE WHEN e.kind = 'Deal' THEN {_cents('e.amount')} ELSE 0 END AS amount_cents,
       CASE WHEN e.kind = 'Lead' THEN NULL ELSE e.customer_id END AS customer_id,
       CASE WHEN e.kind = 'Ticket' THEN NULL ELSE e.campaign_id END AS campaign_id,
       CASE WHEN e.kind = 'Lead' THEN e.region ELSE c.region END AS region,
       CASE WHEN e.kind = 'Lead' THEN e.industry ELSE c.industry END AS industry,
       CASE WHEN e.kind = 'Lead' THEN e.channel ELSE c.channel END AS channel,
       CASE WHEN e.kind = 'Deal' THEN e.currency ELSE '' END AS currency
FROM funnel_log e
LEFT JOIN funnel_log c ON e.kind <> 'Lead' AND c.kind = 'Customer' AND c.event = 'Registered'
     AND c.aggregate_id = e.customer_id AND c.position < e.position
WHERE e.event IN ('Opened', 'Captured') AND e.kind IN ('Deal', 'Lead', 'Ticket')
"""
# A deal's or ticket's region, industry and channel are its customer's as registered before it was opened
# (`handlers._customer_attributes`: none if the log has not registered the customer yet).

_MOVE_TARGET = f"""CASE
    WHEN s.kind = 'Deal' AND s.event = 'StageChanged' THEN s.to_stage
    WHEN s.kind = 'Deal' AND s.event IN ('Won') THEN '{WON}'
    WHEN s.kind = 'Deal' AND s.event IN ('Lost') THEN '{LOST}'
    WHEN s.kind = 'Deal' AND s.event = 'Reopened' THEN s.stage
    WHEN s.kind = 'Lead' AND s.event = 'Assigned' THEN 'assigned'
    WHEN s.kind = 'Lead' AND s.event = 'Contacted' THEN 'contacted'
    WHEN s.kind = 'Lead' AND s.event = 'Qualified' THEN 'qualified'
    WHEN s.kind = 'Lead' AND s.event = 'Disqualified' THEN '{LOST}'
    WHEN s.kind = 'Lead' AND s.event = 'Converted' THEN '{WON}'
    WHEN s.kind = 'Ticket' AND s.event = 'StatusChanged' AND s.to_status = 'in_progress' THEN 'in_progress'
    WHEN s.kind = 'Ticket' AND s.event = 'Resolved' THEN 'resolved'
    WHEN s.kind = 'Ticket' AND s.event = 'SatisfactionRated'
         THEN CASE WHEN s.score >= {SATISFIED_SCORE} THEN '{WON}' ELSE '{LOST}' END
    WHEN s.kind = 'Ticket' AND s.event = 'Reopened' THEN 'feedback'
END"""
_CONDITIONAL = ("(s.kind = 'Lead' AND s.event IN ('Assigned', 'Contacted')) "
                "OR (s.kind = 'Ticket' AND s.event = 'StatusChanged')")

MOVES = f"""
SELECT i.item_id, i.kind, s.version, s.position, s.at, s.at_day, s.at_month,
       CASE WHEN s.version = i.version THEN 'enter' ELSE 'move' END AS step,
       CASE WHEN s.version = i.version THEN i.stage ELSE {_MOVE_TARGET} END AS target,
       CASE WHEN s.version <> i.version AND ({_CONDITIONAL}) THEN {_chain_rank('s.kind', _MOVE_TARGET)} END AS cond_rank
FROM funnel_enters i
JOIN funnel_log s ON s.aggregate_id = i.item_id AND s.version >= i.version
WHERE s.version = i.version OR ({_MOVE_TARGET}) IS NOT NULL
"""
# Every stage step of an item, the entry first; `cond_rank` is set for a conditional move (its target's rank
# in its chain) and NULL for the entry and the unconditional moves, which start a segment.

MOVE_SEGMENTS = f"""
SELECT m.*, SUM(CASE WHEN cond_rank IS NULL THEN 1 ELSE 0 END) OVER (
           PARTITION BY item_id ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS segment,
       {_chain_rank('kind', 'target')} AS target_rank
FROM funnel_moves m
"""

MOVE_SETTINGS = """
SELECT m.*,
       cond_rank IS NULL OR cond_rank > GREATEST(
           FIRST_VALUE(target_rank) OVER (PARTITION BY item_id, segment ORDER BY version
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           COALESCE(MAX(cond_rank) OVER (PARTITION BY item_id, segment ORDER BY version
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), -1)) AS sets
FROM funnel_move_segments m
"""
# `sets`: the step leaves the item in its target (an unconditional one always does: it moves there or is
# there already; a conditional one when its target is above where the segment's chain has got to).

MOVE_STAGES = """
SELECT m.*, FIRST_VALUE(target) OVER (PARTITION BY item_id, setters ORDER BY version
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS stage_after
FROM (SELECT s.*, SUM(CASE WHEN sets THEN 1 ELSE 0 END) OVER (
          PARTITION BY item_id ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS setters
      FROM funnel_move_settings s) AS m
"""

ARRIVALS = """
SELECT a.item_id, a.version AS seq, a.position, a.at AS entered_at, a.at_day, a.at_month, a.target AS stage,
       LAG(a.target) OVER (PARTITION BY a.item_id ORDER BY a.version) AS prev_stage,
       LAG(a.at) OVER (PARTITION BY a.item_id ORDER BY a.version) AS prev_entered_at,
       LEAD(a.at) OVER (PARTITION BY a.item_id ORDER BY a.version) AS left_at,
       l.level AS level
FROM (SELECT m.*, LAG(stage_after) OVER (PARTITION BY item_id ORDER BY version) AS stage_before
      FROM funnel_move_stages m) AS a
JOIN funnel_enters i ON i.item_id = a.item_id
LEFT JOIN funnel_stage_levels l ON l.pipeline = i.pipeline AND l.stage = a.target AND l.since <= a.position
WHERE a.step = 'enter' OR (a.sets AND a.target <> a.stage_before)
"""
# The accepted moves (and the entry): the item's stays. `level`: the stage's level if it was in the pipeline
# when the item got there (else it is no candidate for the furthest stage; won always is).

ARRIVAL_LEVELS = """
SELECT a.*, b.stage AS furthest_before_stage, f.stage AS furthest_after_stage
FROM (SELECT a.*, i.pipeline,
             MAX(level) OVER (PARTITION BY a.item_id ORDER BY seq
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS furthest_before,
             MAX(level) OVER (PARTITION BY a.item_id ORDER BY seq
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS furthest_after
      FROM funnel_arrivals a JOIN funnel_enters i ON i.item_id = a.item_id) AS a
LEFT JOIN funnel_stage_levels b ON b.pipeline = a.pipeline AND b.level = a.furthest_before
LEFT JOIN funnel_stage_levels f ON f.pipeline = a.pipeline AND f.level = a.furthest_after
"""
# The furthest stage's level before and after each arrival, and its stage (one order: see the docstring).

REVISES = f"""
SELECT i.item_id, s.version, s.at, s.at_day, s.at_month,
       CASE WHEN s.kind = 'Deal' AND s.event = 'OwnerChanged' THEN s.new_owner
            WHEN s.kind = 'Lead' AND s.event = 'Assigned' THEN s.owner
            WHEN s.kind = 'Ticket' AND s.event = 'Assigned' THEN s.assignee END AS owner,
       CASE WHEN s.kind = 'Deal' AND s.event = 'AmountChanged' THEN {_cents('s.new_amount')} END AS amount_cents
FROM funnel_enters i
JOIN funnel_log s ON s.aggregate_id = i.item_id AND s.version > i.version
WHERE (s.kind = 'Deal' AND s.event IN ('OwnerChanged', 'AmountChanged'))
   OR (s.kind IN ('Lead', 'Ticket') AND s.event = 'Assigned')
"""

VALUES_OVER_TIME = """
SELECT t.*, LAST_VALUE(owner IGNORE NULLS) OVER w AS owner_after,
       LAST_VALUE(amount_cents IGNORE NULLS) OVER w AS amount_after,
       LAST_VALUE(stage IGNORE NULLS) OVER w AS stage_now
FROM (SELECT item_id, version, 0 AS step, opened_at AS "at", at_day, at_month, owner, amount_cents, stage
      FROM funnel_enters
      UNION ALL
      SELECT item_id, seq, 1, entered_at, at_day, at_month, NULL, NULL, stage FROM funnel_arrivals
      WHERE prev_stage IS NOT NULL
      UNION ALL
      SELECT item_id, version, 2, "at", at_day, at_month, owner, amount_cents, NULL FROM funnel_revises) AS t
WINDOW w AS (PARTITION BY item_id ORDER BY version, step ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""
# One timeline per item: its entry (step 0), accepted moves (1) and revisions (2; a lead's assignment moves
# it before setting its owner), with the owner, amount and stage after each.

VALUES_BEFORE = """
SELECT v.*, LAG(owner_after) OVER w AS owner_before, LAG(amount_after) OVER w AS amount_before
FROM funnel_values_over_time v
WINDOW w AS (PARTITION BY item_id ORDER BY version, step)
"""

VERSIONS_ = """
SELECT item_id, version AS seq, owner_after AS owner, amount_after AS amount_cents, "at" AS valid_from,
       LEAD("at") OVER (PARTITION BY item_id ORDER BY version) AS valid_to
FROM funnel_values_before
WHERE step = 0 OR (step = 2 AND ((owner IS NOT NULL AND owner <> owner_before)
                                 OR (amount_cents IS NOT NULL AND amount_cents <> amount_before)))
"""
# The item's owner and amount over time: a revision that changes neither writes no version (`_revise`).

_STAY_CLASS = ("CASE WHEN a.entered_at - a.prev_entered_at < 1000000 THEN 0 ELSE 1 + CAST(round("
               f"ln((a.entered_at - a.prev_entered_at) / 1000000) / ln({STAY_CLASS_RATIO!r})) AS BIGINT) END")
_ARRIVAL_DELTAS = (  # (key, delta) by kind of delta, NULL key: none (`tally.left`, then `tally.arrived`)
    ("'n|' || a.prev_stage", "-1"),
    ("'v|' || a.prev_stage || '|' || i.currency", "-v.amount_before"),
    (f"CASE WHEN a.prev_stage NOT IN ('{WON}', '{LOST}') THEN 's|' || a.prev_stage || '|' || "
     f"CAST({_STAY_CLASS} AS VARCHAR) END", "1"),
    (f"CASE WHEN a.prev_stage = '{WON}' THEN 'c' END", "i.opened_at - a.prev_entered_at"),
    (f"CASE WHEN a.prev_stage = '{LOST}' THEN 'l|' || a.furthest_before_stage END", "-1"),
    ("'n|' || a.stage", "1"),
    ("'v|' || a.stage || '|' || i.currency", "COALESCE(v.amount_before, v.amount_after)"),
    ("CASE WHEN a.level IS NOT NULL AND (a.furthest_before IS NULL OR a.level > a.furthest_before) "
     "THEN 'f|' || a.stage END", "1"),
    ("CASE WHEN a.level > a.furthest_before THEN 'f|' || a.furthest_before_stage END", "-1"),
    (f"CASE WHEN a.stage = '{LOST}' THEN 'l|' || a.furthest_before_stage END", "1"),
    (f"CASE WHEN a.stage = '{WON}' THEN 'c' END", "a.entered_at - i.opened_at"),
)


def _by_kind(column: int) -> str:
    return "CASE d.n " + " ".join(f"WHEN {n} THEN {pair[column]}" for n, pair in enumerate(_ARRIVAL_DELTAS)) + " END"


DELTAS = f"""
SELECT item_id, seq, pipeline, part, "at", at_day, at_month, k, delta
FROM (SELECT i.item_id, a.seq, i.pipeline, i.part, a.entered_at AS "at", a.at_day, a.at_month,
             {_by_kind(0)} AS k, {_by_kind(1)} AS delta
      FROM funnel_arrival_levels a
      JOIN funnel_enters i ON i.item_id = a.item_id
      JOIN funnel_values_before v ON v.item_id = a.item_id AND v.version = a.seq
           AND v.step = CASE WHEN a.prev_stage IS NULL THEN 0 ELSE 1 END
      CROSS JOIN (VALUES {', '.join(f'({n})' for n in range(len(_ARRIVAL_DELTAS)))}) AS d(n)) AS x
WHERE k IS NOT NULL
UNION ALL
SELECT i.item_id, v.version, i.pipeline, i.part, v.at, v.at_day, v.at_month, 'v|' || v.stage_now || '|' || i.currency,
       v.amount_cents - v.amount_before
FROM funnel_values_before v
JOIN funnel_enters i ON i.item_id = v.item_id
WHERE v.step = 2 AND v.amount_cents IS NOT NULL AND v.amount_cents <> v.amount_before
"""
# What each event changes (`tally.left`, `arrived`, `revalued`), one row per key (a NULL key: none; a NULL
# `prev_stage`, the entry, has no left part); summed per event next. A move's value is the amount before the
# event (a lead's assignment sets its owner after moving it).

EVENT_CHANGES = """
SELECT item_id, seq, k, MIN(pipeline) AS pipeline, MIN(part) AS part, MIN("at") AS "at", MIN(at_day) AS at_day,
       MIN(at_month) AS at_month, CAST(SUM(delta) AS BIGINT) AS delta
FROM funnel_deltas
GROUP BY item_id, seq, k
HAVING SUM(delta) <> 0
"""
# (pipeline, part, at and its day and month are the same for every row of one event: MIN picks them)

_JSON_OBJECT = "'{' || COALESCE(string_agg('\"' || k || '\":' || CAST(delta AS VARCHAR), ','), '') || '}'"

CHANGES_ = f"""
SELECT item_id, seq, pipeline, "at", {_JSON_OBJECT} AS deltas
FROM funnel_event_changes
GROUP BY item_id, seq, pipeline, "at"
"""

TALLIES_ = """
SELECT t.pipeline, t.grain, t.period, t.part, c.n, t.deltas
FROM (
  SELECT pipeline, grain, period, part,
         '{' || COALESCE(string_agg(CASE WHEN delta <> 0 THEN '"' || k || '":' || CAST(delta AS VARCHAR) END, ','), '')
         || '}' AS deltas
  FROM funnel_period_changes
  GROUP BY pipeline, grain, period, part
) t
JOIN funnel_period_counts c ON c.pipeline = t.pipeline AND c.grain = t.grain AND c.period = t.period AND c.part = t.part
"""
# A period whose changes cancel keeps its row, `{}` (`tally.merge` drops zero keys, `record` puts the row).

DAY_COUNTS = """
SELECT pipeline, at_day, at_month, part, COUNT(*) AS n
FROM (SELECT DISTINCT item_id, seq, pipeline, part, at_day, at_month FROM funnel_event_changes) e
GROUP BY pipeline, at_day, at_month, part
"""
# How many changes (events with one) each day's tally sums: `TallyRow.n`, which `record` counts.

PERIOD_COUNTS = """
SELECT pipeline, 'd' AS grain, at_day AS period, part, CAST(n AS BIGINT) AS n FROM funnel_day_counts
UNION ALL
SELECT pipeline, 'm' AS grain, at_month AS period, part, CAST(SUM(n) AS BIGINT) AS n
FROM funnel_day_counts
GROUP BY pipeline, at_month, part
"""

_YEAR_OF = "date_diff('day', DATE '1970-01-01', make_date(CAST(year(DATE '1970-01-01' + CAST({} AS INTEGER)) AS BIGINT), 1, 1))"
# the first day of the year of a day number (`tables.year_of`): its calendar's, as the month's was the zone's

_SUMMED = """'{' || COALESCE(string_agg(CASE WHEN s.delta <> 0 THEN '"' || s.k || '":' || CAST(s.delta AS VARCHAR) END, ','),
       '') || '}'"""

SUMS_ = f"""
SELECT c.pipeline, c.grain, c.period, c.n, {_SUMMED} AS deltas
FROM (
  SELECT pipeline, grain, period, CAST(SUM(n) AS BIGINT) AS n FROM funnel_period_counts GROUP BY pipeline, grain, period
) c
JOIN (SELECT pipeline, grain, MAX(period) AS last_period FROM funnel_period_counts GROUP BY pipeline, grain) l
  ON l.pipeline = c.pipeline AND l.grain = c.grain AND c.period < l.last_period
JOIN (
  SELECT pipeline, grain, period, k, CAST(SUM(delta) AS BIGINT) AS delta
  FROM funnel_period_changes GROUP BY pipeline, grain, period, k
) s ON s.pipeline = c.pipeline AND s.grain = c.grain AND s.period = c.period
GROUP BY c.pipeline, c.grain, c.period, c.n
UNION ALL
SELECT c.pipeline, 'y' AS grain, c.first_day AS period, c.n, {_SUMMED} AS deltas
FROM (
  SELECT pipeline, {_YEAR_OF.format("period")} AS first_day, CAST(SUM(n) AS BIGINT) AS n
  FROM funnel_period_counts WHERE grain = 'm' GROUP BY pipeline, {_YEAR_OF.format("period")}
) c
JOIN (SELECT pipeline, MAX(period) AS last_month FROM funnel_period_counts WHERE grain = 'm' GROUP BY pipeline) l
  ON l.pipeline = c.pipeline AND c.first_day < {_YEAR_OF.format("l.last_month")}
JOIN (
  SELECT pipeline, {_YEAR_OF.format("period")} AS first_day, k, CAST(SUM(delta) AS BIGINT) AS delta
  FROM funnel_period_changes WHERE grain = 'm' GROUP BY pipeline, {_YEAR_OF.format("period")}, k
) s ON s.pipeline = c.pipeline AND s.first_day = c.first_day
GROUP BY c.pipeline, c.first_day, c.n
"""
# The closed days and months (before the pipeline's last day, its last month) and years (before its last month's)
# summed over the partitions, as `tally.refresh_sums` keeps them; a sum whose keys cancel is `{}` (every period
# has a row per key in `funnel_period_changes`, zero or not).

PERIOD_CHANGES = """
SELECT pipeline, 'd' AS grain, at_day AS period, part, k, delta FROM funnel_day_changes
UNION ALL
SELECT pipeline, 'm' AS grain, at_month AS period, part, k, CAST(SUM(delta) AS BIGINT) AS delta
FROM funnel_day_changes
GROUP BY pipeline, at_month, part, k
"""
# One row per (pipeline, grain, period, part, key): the month's sums from the days' (a day lies in one month),
# so the months group ≈ 4× fewer rows than the events' changes (203,700 demo events: 514k day rows, 648k
# event changes).

DAY_CHANGES = """
SELECT pipeline, at_day, at_month, part, k, CAST(SUM(delta) AS BIGINT) AS delta
FROM funnel_event_changes
GROUP BY pipeline, at_day, at_month, part, k
"""

INTERVALS_ = f"""
SELECT a.item_id, a.seq, i.pipeline, a.stage, a.prev_stage, a.entered_at, a.left_at,
       a.left_at - a.entered_at AS length, {length_band_sql("(a.left_at - a.entered_at)")} AS length_band
FROM funnel_arrivals a JOIN funnel_enters i ON i.item_id = a.item_id
"""

ITEMS_ = """
SELECT i.item_id, i.pipeline, i.customer_id, i.campaign_id, i.region, i.industry, i.channel, i.opened_at,
       a.stage, a.prev_stage, a.seq AS stage_seq, a.entered_at AS stage_entered_at,
       v.owner, v.amount_cents, v.seq AS version_seq, v.valid_from AS version_from,
       a.furthest_after_stage AS furthest, i.currency
FROM funnel_enters i
JOIN funnel_arrival_levels a ON a.item_id = i.item_id AND a.left_at IS NULL
JOIN funnel_versions v ON v.item_id = i.item_id AND v.valid_to IS NULL
"""

CUSTOMERS_ = """
SELECT aggregate_id AS customer_id, region, industry, channel
FROM funnel_log WHERE kind = 'Customer' AND event = 'Registered'
"""

STEPS: tuple[tuple[str, str], ...] = (
    ("funnel_log", FUNNEL_LOG),
    ("funnel_enters", ENTERS),
    ("funnel_moves", MOVES),
    ("funnel_move_segments", MOVE_SEGMENTS),
    ("funnel_move_settings", MOVE_SETTINGS),
    ("funnel_move_stages", MOVE_STAGES),
    ("funnel_arrivals", ARRIVALS),
    ("funnel_arrival_levels", ARRIVAL_LEVELS),
    ("funnel_revises", REVISES),
    ("funnel_values_over_time", VALUES_OVER_TIME),
    ("funnel_values_before", VALUES_BEFORE),
    ("funnel_versions_rows", VERSIONS_),
    ("funnel_deltas", DELTAS),
    ("funnel_event_changes", EVENT_CHANGES),
    ("funnel_day_changes", DAY_CHANGES),
    ("funnel_period_changes", PERIOD_CHANGES),
    ("funnel_day_counts", DAY_COUNTS),
    ("funnel_period_counts", PERIOD_COUNTS),
    ("funnel_changes_rows", CHANGES_),
    ("funnel_tallies_rows", TALLIES_),
    ("funnel_sums_rows", SUMS_),
    ("funnel_intervals_rows", INTERVALS_),
    ("funnel_items_rows", ITEMS_.replace("funnel_versions v", "funnel_versions_rows v")),
    ("funnel_customers_rows", CUSTOMERS_),
    *property_fold_steps("funnel", "funnel_log"),
)
"""The fold, in order: each SELECT reads `log_events`, `funnel_stage_levels` or earlier steps by name."""
READ_ONCE = frozenset({"funnel_moves", "funnel_move_segments", "funnel_move_settings", "funnel_move_stages",
                       "funnel_revises", "funnel_values_over_time", "funnel_deltas"})
"""The steps only the next one reads, which an engine may keep as views rather than store (DuckDB does)."""


ZONED_AFTER = "funnel_log"
"""The step after which the runner puts the days and months of the read model's zone in (`zoned_days`)."""
LOG_RANGE = 'SELECT MIN("at"), MAX("at") FROM funnel_log'
"""The instants the log spans, which bound the zone's offset changes `zoned_days` meets."""


def zoned_day_columns(zone: tzinfo, first: int, last: int) -> dict[str, str] | None:
    """`funnel_log`'s day and month columns in `zone`'s calendar, as DuckDB expressions of its `at`, for events
    in [first, last] µs: the local wall time from the zone's offset changes (`zone_sql`, as the handlers'
    `zoneinfo`). None for UTC, whose days `FUNNEL_LOG` finds. Transpiled by sqlglot for Spark (`make_timestamp`
    becomes `timestamp_micros`, read in the session's UTC), so both engines cut the same days."""
    if is_utc(zone):
        return None
    local = duckdb_local_date('"at"', zone, from_micros(first), from_micros(last + 1))
    return {"at_day": f"date_diff('day', DATE '1970-01-01', CAST({local} AS DATE))",
            "at_month": f"date_diff('day', DATE '1970-01-01', CAST(date_trunc('month', {local}) AS DATE))"}


def zoned_days(zone: tzinfo, first: int, last: int) -> str | None:
    """DuckDB's statement making `funnel_log`'s days and months those of `zone` (`zoned_day_columns`)."""
    columns = zoned_day_columns(zone, first, last)
    if columns is None:
        return None
    replaced = ", ".join(f"{expression} AS {name}" for name, expression in columns.items())
    return f"CREATE OR REPLACE TEMP TABLE funnel_log AS SELECT * REPLACE ({replaced}) FROM funnel_log"


PORTABLE_STEPS: tuple[tuple[str, str], ...] = (("funnel_log", FUNNEL_LOG_PORTABLE), *STEPS[1:])
"""The same fold for engines other than DuckDB: give each step to `sqlglot.transpile(sql, read="duckdb",
write=…)`."""

TABLES: dict[str, str] = {
    INTERVALS.name: "funnel_intervals_rows", VERSIONS.name: "funnel_versions_rows",
    CHANGES.name: "funnel_changes_rows", TALLIES.name: "funnel_tallies_rows", SUMS.name: "funnel_sums_rows",
    ITEMS.name: "funnel_items_rows",
    CUSTOMERS.name: "funnel_customers_rows", PROPERTIES.name: "funnel_properties_rows",
    CURRENT_PROPERTIES.name: "funnel_current_properties_rows", PIPELINES.name: "funnel_pipelines_rows",
}
"""Read-model table → the step (or, for `funnel_pipelines`, the relation `pipeline_stages` gives) with its rows."""

CHECKS: dict[str, str] = {
    "an item changed before it entered its pipeline": """
SELECT MIN(e.position) FROM funnel_log e
WHERE e.kind IN ('Deal', 'Lead', 'Ticket') AND e.event NOT IN ('Opened', 'Captured', 'PropertiesChanged')
  AND (e.event <> 'StatusChanged' OR e.to_status = 'in_progress')
  AND NOT EXISTS (SELECT 1 FROM funnel_enters n WHERE n.item_id = e.aggregate_id)""",
}
"""The handlers' assert (`handlers._item`: a step of an item it never saw enter), as the first log position
breaking it (`services/bulk`: the handlers rebuild the funnel then, and stop there)."""

LEVELS_AFTER = "funnel_log"
"""The step after which the runner folds the pipelines (`pipeline_stages` over these two queries) and gives
the SQL their levels as `funnel_stage_levels` (pipeline, stage, level, since)."""
PIPELINE_EVENTS = """
SELECT position, aggregate_id, event, pipeline_state FROM funnel_log WHERE kind = 'Pipeline' ORDER BY position
"""
ITEM_PIPELINES = """
SELECT DISTINCT CASE kind WHEN 'Deal' THEN pipeline WHEN 'Lead' THEN 'marketing' ELSE 'service' END
FROM funnel_log WHERE event IN ('Opened', 'Captured') AND kind IN ('Deal', 'Lead', 'Ticket')
"""


class StageLevel(NamedTuple):
    """A stage's level in its pipeline's latest order, and the log position from which it is in it."""

    pipeline: str
    stage: str
    level: int
    since: int


class PipelineStages(NamedTuple):
    rows: list[tuple[str, str, str]]  # funnel_pipelines: (pipeline_id, pipeline, stages as JSON text)
    levels: list[StageLevel]  # funnel_stage_levels


def pipeline_stages(events: Iterable[tuple[int, str, str, str]], item_pipelines: Iterable[str]) -> PipelineStages:
    """The pipelines' stage lists (`tally.define`, `insert_stage`; a standard pipeline's default list for
    items that came before it was defined, `tally.levels_of`) from the Pipeline events as (position,
    aggregate id, event, plain state JSON) in log order: a handful of events, folded here once."""
    stages: dict[str, list[tuple[str, int]]] = {}  # key → [(stage, since)] in order
    ids: dict[str, str] = {}
    keys: dict[str, str] = {}  # aggregate id → key
    for key in item_pipelines:
        if key in DEFAULT_PIPELINES:
            stages[key] = [(stage, 0) for stage, _ in DEFAULT_PIPELINES[key][1]]
            ids[key] = str(pipeline_id(key))
    for position, aggregate_id, event, state_text in events:
        state: dict[str, Any] = orjson.loads(state_text)
        if event == "Defined":
            key = keys[aggregate_id] = state["key"]
            before = dict(stages.get(key, []))
            stages[key] = [(stage["key"], before.get(stage["key"], position)) for stage in state["stages"]]
            ids[key] = aggregate_id
        else:
            stages[keys[aggregate_id]].insert(state["position"], (state["stage"], position))
    levels = [StageLevel(key, stage, level, since) for key, held in stages.items()
              for level, (stage, since) in enumerate([*held, (WON, 0)])]
    rows = [(ids[key], key, orjson.dumps([stage for stage, _ in held]).decode()) for key, held in stages.items()]
    return PipelineStages(rows, levels)
