"""The customer segments read model folded set-based: SQL over the flat log (`log_events`) that builds the very
rows the handlers (`handlers`) write, for a bulk rebuild (issue 14; the funnel's `set_based` explains the form:
named SELECTs in DuckDB's dialect, run in order, each materialised under its name).

The handlers carry each deal's current span and each customer's span count from event to event, and once per
batch recompute a changed customer's whole timeline (`domain.segmentation.segment_timeline`); here:

- a deal's span events (opened, won, lost, reopened; after its opening, as `_deal` asserts) each end the span
  the one before started (`LEAD`) and start one (open, won; a loss none) for the deal's amount then (the last
  one set, `LAST_VALUE … IGNORE NULLS`); a customer's spans are numbered in log order, as `span_count` numbers
  them; the deal's `span_seq` is its last span event's span;
- a purchase in another currency converts at the rate into CNY in force when it was made (`ASOF` join on the
  rates, a correction of a date replacing its rate), to the cent, half-even (`exchange_rates.convert_cents`),
  in exact integers (the rate × 10¹² as HUGEINT: < 1.7e38 for any amount below `money.LIMIT` at any rate);
- the timeline: the segment is evaluated at every instant where it may change — the customer's start
  (registration or first span), every span's start and end, and every purchase's age limits
  (`domain.segmentation.RECENCY_DAYS` + 1 µs; the last is where it leaves the 365-day window) — as
  `segment_at` defines it, from running sums of +1/−1 steps (the sweep's `_Sweep`, set-based: open deals,
  purchases and CNY in the window, purchases per pipeline and unconverted amounts per currency) looked up
  per instant by ASOF joins; the instants at and after the customer was forgotten are cut. Consecutive
  equal segments merge (an extra instant where nothing changes merges away, so the superset of the
  instants the sweep visits gives the same maximal intervals), and `tier_since` is the start of each run
  of one tier (`merged_timeline`);
- a customer's properties are `versioned_properties.record_changes` folded (`property_fold_steps`).

Not written: the superseded interval rows (`rows.superseded`, the empty range a longer earlier timeline
leaves behind). Which the handlers leave depends on how their batches fell; no query reads them
(`INTERVALS.ignored_rows`, which the diffs of `crm projections verify` and the tests leave out).

Where the handlers stop, so does the bulk path (`CHECKS`: the runner hands over to them): at a deal event before
its deal's opening (`_deal`'s assert), and at a customer forgotten with neither registration nor deal (its
timeline has no start: `min()` of nothing). Events stored under an older `class_version` arrive upcast
(services/bulk/log_reader.py).

Cost: linear in the facts but for the last purchase among those later withdrawn (a reopened win), joined with
the customer's instants: one customer with 2,000 deals (tests/benchmarks/whale.py, a tenth reopened, 5,775
intervals) folds in 0.5 s (the whole bulk rebuild 2.5 s against 3.5 s for its handlers, on a loaded machine).
"""

from __future__ import annotations

from datetime import timedelta

from domain.segmentation import (HIGH_VALUE, HIGH_VALUE_MIN_FM, HIGH_VALUE_MIN_RECENCY, LAPSED_RECENCY,
                                 MAX_FREQUENCY, MONETARY_CNY, MONETARY_CURRENCY, ORDINARY, POTENTIAL,
                                 POTENTIAL_MIN_FM, POTENTIAL_MIN_RECENCY, RECENCY_DAYS, WINDOW)
from domain.exchange_rates import RATE_PLACES
from domain.partitions import PARTITIONS
from projections.segments.handlers import (CUSTOMERS, DEALS, INTERVALS, OPEN, PROPERTIES, RATES, SPANS, TOUCHES,
                                           WON)
from projections.segments.tier_tallies import TALLIES
from projections.tables import cents_sql, micros_sql
from projections.versioned_properties import property_fold_steps

_DAY = 86_400_000_000  # µs
_WINDOW = WINDOW // timedelta(microseconds=1)  # a purchase counts for F and M while at most this old (µs)
_RATE_SCALE = 10 ** RATE_PLACES  # a rate × this is a whole number (at most 12 decimal places)

_EVENTS = ("Customer.Registered", "Customer.Forgotten", "Customer.TouchLogged", "Customer.PropertiesChanged",
           "Deal.Opened", "Deal.AmountChanged", "Deal.Won", "Deal.Lost", "Deal.Reopened",
           "ExchangeRate.Quoted", "ExchangeRate.Corrected")
"""The events the handlers read (`SegmentsReadModel.handlers`, by kind and name)."""

_FIELDS = ("occurred_at", "customer_id", "pipeline", "currency", "amount", "new_amount", "channel", "region",
           "industry", "quote", "rate")
"""The state's fields the fold reads (each event has some of them; the others are NULL)."""

LOG = f"""
SELECT position, aggregate_id, version, kind, event, {micros_sql('occurred_at')} AS "at", customer_id, pipeline,
       currency, CASE WHEN kind = 'Deal' THEN {cents_sql("COALESCE(amount, new_amount)")} END AS amount_cents,
       channel, region, industry, quote, rate,
       CASE WHEN event = 'PropertiesChanged' THEN json_extract(state, '$.changes') END AS changes
FROM (SELECT "position" AS position, aggregate_id, version, kind, event, state,
             {', '.join(f"fields[{i + 1}] AS {name}" for i, name in enumerate(_FIELDS))}
      FROM (SELECT *, json_extract_string(state, [{', '.join(f"'$.{name}'" for name in _FIELDS)}]) AS fields
            FROM log_events WHERE kind || '.' || event IN ({', '.join(f"'{e}'" for e in _EVENTS)})) AS l) AS e
"""
# DuckDB parses each state once for all fields (the list form of json_extract_string, as the funnel's log).

DEAL_EVENTS = """
SELECT e.aggregate_id AS deal_id, e.position, e.version, e.event, e."at", o.customer_id, o.pipeline, o.currency,
       LAST_VALUE(e.amount_cents IGNORE NULLS) OVER (PARTITION BY e.aggregate_id ORDER BY e.version
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS amount_cents
FROM segments_log e
LEFT JOIN segments_log o ON o.aggregate_id = e.aggregate_id AND o.kind = 'Deal' AND o.event = 'Opened'
     AND o.position <= e.position
WHERE e.kind = 'Deal'
"""
"""Each deal event with its deal's opening (customer, pipeline, currency: NULL if none came before) and amount."""

SPAN_EVENTS = f"""
SELECT *, CASE event WHEN 'Won' THEN '{WON}' WHEN 'Lost' THEN NULL ELSE '{OPEN}' END AS kind,
       LEAD("at") OVER (PARTITION BY deal_id ORDER BY version) AS next_at
FROM segments_deal_events WHERE event <> 'AmountChanged' AND customer_id IS NOT NULL
"""

SPANS_ = """
SELECT customer_id, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY position) - 1 AS seq, deal_id, kind,
       pipeline, "at" AS start_at, next_at AS end_at, amount_cents, currency, position
FROM segments_span_events WHERE kind IS NOT NULL
"""

DEALS_ = """
SELECT d.deal_id, d.customer_id, d.pipeline, d.currency, d.amount_cents, s.seq AS span_seq
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY deal_id ORDER BY version DESC) AS nth
      FROM segments_deal_events WHERE customer_id IS NOT NULL) AS d
JOIN (SELECT deal_id, max(position) AS position FROM segments_span_events GROUP BY deal_id) AS last
     ON last.deal_id = d.deal_id
LEFT JOIN segments_spans_rows s ON s.deal_id = d.deal_id AND s.position = last.position
WHERE d.nth = 1
"""
"""A deal's last amount, and its current span: the one its last span event started (none after a loss)."""

CNY_RATES = f"""
SELECT currency, valid_at, rate,
       CAST(CAST(rate AS DECIMAL(38, {RATE_PLACES})) * CAST({_RATE_SCALE} AS DECIMAL({RATE_PLACES + 1}, 0)) AS HUGEINT)
           AS scaled
FROM (SELECT currency, "at" AS valid_at, rate,
             ROW_NUMBER() OVER (PARTITION BY currency, "at" ORDER BY position DESC) AS nth
      FROM segments_log WHERE kind = 'ExchangeRate' AND quote = '{MONETARY_CURRENCY}') AS r
WHERE nth = 1
"""
"""Each currency's rates into CNY by date, a correction replacing the date's rate (`_rate`: the last put wins)."""

RATES_ = """
SELECT currency, json_group_object(CAST(valid_at AS VARCHAR), rate) AS series FROM segments_cny_rates GROUP BY currency
"""

TOUCHES_ = ("SELECT aggregate_id AS customer_id, version AS seq, channel, \"at\" AS touched_at FROM segments_log "
            "WHERE kind = 'Customer' AND event = 'TouchLogged'")

REGISTRATIONS = """
SELECT c.customer_id, r."at" AS registered_at, f."at" AS forgotten_at, r.channel, r.region, r.industry,
       LEAST(r."at", s.start_at) AS start_at
FROM (SELECT aggregate_id AS customer_id FROM segments_log
      WHERE kind = 'Customer' AND event IN ('Registered', 'Forgotten')
      UNION SELECT customer_id FROM segments_deal_events WHERE event = 'Opened' AND customer_id IS NOT NULL) AS c
LEFT JOIN (SELECT *, ROW_NUMBER() OVER (PARTITION BY aggregate_id ORDER BY position DESC) AS nth FROM segments_log
           WHERE kind = 'Customer' AND event = 'Registered') AS r ON r.aggregate_id = c.customer_id AND r.nth = 1
LEFT JOIN (SELECT *, ROW_NUMBER() OVER (PARTITION BY aggregate_id ORDER BY position DESC) AS nth FROM segments_log
           WHERE kind = 'Customer' AND event = 'Forgotten') AS f ON f.aggregate_id = c.customer_id AND f.nth = 1
LEFT JOIN (SELECT customer_id, min(start_at) AS start_at FROM segments_spans_rows GROUP BY customer_id) AS s
     ON s.customer_id = c.customer_id
"""
"""Every customer the handlers make a row for (`_customer`: registered, forgotten, or named by a deal), with
its timeline's start (registration or first span, whichever is first) and end (when it was forgotten)."""

_HALF = _RATE_SCALE // 2
FACTS = f"""
SELECT s.customer_id, s.kind, s.start_at AS since, s.end_at AS until, s.pipeline, s.currency, s.amount_cents,
       CASE WHEN s.kind <> '{WON}' THEN NULL WHEN s.currency = '{MONETARY_CURRENCY}' THEN s.amount_cents
            WHEN s.scaled IS NOT NULL THEN
                 CAST(p // {_RATE_SCALE} + CASE WHEN p % {_RATE_SCALE} > {_HALF} THEN 1
                                                WHEN p % {_RATE_SCALE} < {_HALF} THEN 0
                                                ELSE (p // {_RATE_SCALE}) % 2 END AS BIGINT) END AS cny_cents
FROM (SELECT s.*, r.scaled, CAST(s.amount_cents AS HUGEINT) * r.scaled AS p
      FROM segments_spans_rows s
      ASOF LEFT JOIN segments_cny_rates r ON r.currency = s.currency AND s.start_at >= r.valid_at) AS s
WHERE s.end_at IS NULL OR s.end_at > s.start_at
"""
"""The spans that ever count (one ended the instant it began never does: `_Sweep`), a purchase's amount in CNY
(NULL: no rate into CNY in force when it was made; amounts are never negative, so `//` and `%` are exact)."""

_LIMITS = ", ".join(f"({days * _DAY + 1})" for days, _ in RECENCY_DAYS)  # ages where R drops (WINDOW's among them)

INSTANTS = f"""
SELECT DISTINCT i.customer_id, i.t
FROM (SELECT customer_id, start_at AS t FROM segments_registrations
      UNION ALL SELECT customer_id, since FROM segments_facts
      UNION ALL SELECT customer_id, until FROM segments_facts WHERE until IS NOT NULL
      UNION ALL SELECT customer_id, since + age FROM segments_facts, (VALUES {_LIMITS}) AS limits(age)
      WHERE kind = '{WON}') AS i
JOIN segments_registrations c ON c.customer_id = i.customer_id
WHERE i.t >= c.start_at AND (c.forgotten_at IS NULL OR i.t < c.forgotten_at)
"""
"""Every instant where a customer's segment may change, within its timeline."""

_LEAVES = f"LEAST(since + {_WINDOW + 1}, until)"  # a purchase leaves the window, or stops counting (NULL: never)

SUMS = f"""
SELECT customer_id, time, SUM(d_open) OVER w AS open_deals, SUM(d_window) OVER w AS in_window,
       SUM(d_cny) OVER w AS monetary_cents
FROM (SELECT customer_id, time, sum(d_open) AS d_open, sum(d_window) AS d_window, sum(d_cny) AS d_cny
      FROM (SELECT customer_id, since AS time, CASE WHEN kind = '{OPEN}' THEN 1 ELSE 0 END AS d_open,
                   CASE WHEN kind = '{WON}' THEN 1 ELSE 0 END AS d_window,
                   CASE WHEN kind = '{WON}' THEN COALESCE(cny_cents, 0) ELSE 0 END AS d_cny FROM segments_facts
            UNION ALL SELECT customer_id, until, -1, 0, 0 FROM segments_facts WHERE kind = '{OPEN}' AND until IS NOT NULL
            UNION ALL SELECT customer_id, {_LEAVES}, 0, -1, -COALESCE(cny_cents, 0) FROM segments_facts
            WHERE kind = '{WON}') AS d
      GROUP BY customer_id, time) AS steps
WINDOW w AS (PARTITION BY customer_id ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""
"""From each instant a fact starts or stops on, the open deals, the purchases in the 365-day window and their
CNY: running sums of +1/−1 steps (`_Sweep`'s), so that an instant's figures are one ASOF lookup, linear in the
facts where joining instants with the facts covering them was quadratic per customer."""


def _running(column: str, steps: str) -> str:
    """Per customer and `column` (pipeline, currency), the running sum of the `steps` (a SELECT of customer_id,
    `column`, time, d) from each instant it changes on."""
    return f"""
SELECT customer_id, {column}, time, SUM(d) OVER (PARTITION BY customer_id, {column} ORDER BY time
                                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS total
FROM (SELECT customer_id, {column}, time, sum(d) AS d FROM ({steps}) AS d GROUP BY customer_id, {column}, time) AS s
"""


PIPELINE_COUNTS = _running("pipeline", f"""
SELECT customer_id, pipeline, since AS time, 1 AS d FROM segments_facts WHERE kind = '{WON}'
UNION ALL SELECT customer_id, pipeline, until, -1 FROM segments_facts WHERE kind = '{WON}' AND until IS NOT NULL""")
"""Purchases counting per pipeline (all time: until withdrawn)."""

UNCONVERTED_SUMS = _running("currency", f"""
SELECT customer_id, currency, since AS time, amount_cents AS d FROM segments_facts
WHERE kind = '{WON}' AND cny_cents IS NULL
UNION ALL SELECT customer_id, currency, {_LEAVES}, -amount_cents FROM segments_facts
WHERE kind = '{WON}' AND cny_cents IS NULL""")
"""What the window holds per currency without a rate into CNY."""


def _as_of_each_instant(running: str, column: str) -> str:
    """Each instant of the customers in `running`, per value of `column` they have, with its running total then."""
    return f"""
SELECT x.customer_id, x.t, x.{column}, r.total
FROM (SELECT i.customer_id, i.t, v.{column} FROM segments_instants i
      JOIN (SELECT DISTINCT customer_id, {column} FROM {running}) AS v ON v.customer_id = i.customer_id) AS x
ASOF JOIN {running} r ON r.customer_id = x.customer_id AND r.{column} = x.{column} AND x.t >= r.time
"""


PREFERRED = f"""
SELECT customer_id, t, pipeline
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY customer_id, t ORDER BY total DESC, pipeline) AS nth
      FROM ({_as_of_each_instant('segments_pipeline_counts', 'pipeline')}) AS c WHERE total > 0) AS p
WHERE nth = 1
"""
"""The pipeline of most counting purchases, ties alphabetical (`most_frequent`; DuckDB orders text by code point,
as Python does)."""

UNCONVERTED = f"""
SELECT customer_id, t, '{{' || string_agg('"' || currency || '":' || CAST(total AS VARCHAR), ',' ORDER BY currency)
       || '}}' AS unconverted
FROM ({_as_of_each_instant('segments_unconverted_sums', 'currency')}) AS u WHERE total <> 0
GROUP BY customer_id, t
"""
"""What the window holds per currency without a rate, as `_interval_row` writes it (orjson: compact, keys in
currency order, zero sums left out)."""

LATEST = f"""
SELECT i.customer_id, i.t, GREATEST(kept.since, withdrawn.since) AS last_purchase_at
FROM segments_instants i
ASOF LEFT JOIN (SELECT customer_id, since FROM segments_facts WHERE kind = '{WON}' AND until IS NULL) AS kept
     ON kept.customer_id = i.customer_id AND i.t >= kept.since
LEFT JOIN (SELECT i.customer_id, i.t, max(f.since) AS since FROM segments_instants i
           JOIN segments_facts f ON f.customer_id = i.customer_id AND f.kind = '{WON}' AND f.until IS NOT NULL
                AND f.since <= i.t AND f.until > i.t
           GROUP BY i.customer_id, i.t) AS withdrawn ON withdrawn.customer_id = i.customer_id AND withdrawn.t = i.t
"""
"""The last counting purchase: the last one made by then of those never withdrawn (ASOF), or of the few withdrawn
later (reopened deals; joined on their span) if later still."""


def _recency(age: str) -> str:
    ranks = " ".join(f"WHEN {age} <= {days * _DAY} THEN {score}" for days, score in RECENCY_DAYS)
    return f"CASE WHEN {age} IS NULL THEN 0 {ranks} ELSE {LAPSED_RECENCY} END"


def _monetary(cents: str) -> str:
    ranks = " ".join(f"WHEN {cents} >= {int(minimum * 100)} THEN {score}" for minimum, score in MONETARY_CNY)
    return f"CASE WHEN {cents} <= 0 THEN 0 {ranks} ELSE 1 END"


_TIER = (f"CASE WHEN recency >= {HIGH_VALUE_MIN_RECENCY} AND frequency + monetary >= {HIGH_VALUE_MIN_FM} "
         f"THEN '{HIGH_VALUE}' WHEN (recency >= {POTENTIAL_MIN_RECENCY} AND frequency + monetary >= {POTENTIAL_MIN_FM}) "
         f"OR open_deals > 0 THEN '{POTENTIAL}' ELSE '{ORDINARY}' END")

SCORED = f"""
SELECT *, {_TIER} AS tier
FROM (SELECT i.customer_id, i.t, {_recency('i.t - l.last_purchase_at')} AS recency,
             LEAST(COALESCE(f.in_window, 0), {MAX_FREQUENCY}) AS frequency,
             {_monetary('COALESCE(f.monetary_cents, 0)')} AS monetary, COALESCE(f.monetary_cents, 0) AS monetary_cents,
             COALESCE(f.open_deals, 0) AS open_deals, l.last_purchase_at, p.pipeline AS preferred_pipeline,
             u.unconverted
      FROM segments_instants i
      ASOF LEFT JOIN segments_sums f ON f.customer_id = i.customer_id AND i.t >= f.time
      JOIN segments_latest l ON l.customer_id = i.customer_id AND l.t = i.t
      LEFT JOIN segments_preferred p ON p.customer_id = i.customer_id AND p.t = i.t
      LEFT JOIN segments_unconverted u ON u.customer_id = i.customer_id AND u.t = i.t) AS s
"""
"""`segment_at` at each instant, and its tier (`tier_of`)."""

_SEGMENT = ("recency", "frequency", "monetary", "monetary_cents", "open_deals", "last_purchase_at",
            "preferred_pipeline", "unconverted")  # `Segment`'s fields: equal segments merge

CHANGES = f"""
SELECT *
FROM (SELECT *, {' OR '.join(f"{name} IS DISTINCT FROM LAG({name}) OVER w" for name in _SEGMENT)}
                OR LAG(t) OVER w IS NULL AS changed, LAG(tier) OVER w AS tier_before
      FROM segments_scored WINDOW w AS (PARTITION BY customer_id ORDER BY t)) AS s
WHERE changed
"""
"""The instants where the segment differs from the one before: each begins an interval (`merged_timeline`). The
instant before is in the interval before (equal to its segment, or its first), so its tier is that interval's."""

INTERVALS_ = """
SELECT c.customer_id, ROW_NUMBER() OVER w - 1 AS seq, c.t AS valid_from,
       COALESCE(LEAD(c.t) OVER w, r.forgotten_at) AS valid_to, c.tier,
       MAX(CASE WHEN c.tier IS DISTINCT FROM c.tier_before THEN c.t END) OVER w AS tier_since,
       c.recency, c.frequency, c.monetary, c.monetary_cents, c.open_deals, c.last_purchase_at, c.preferred_pipeline,
       c.unconverted
FROM segments_changes c JOIN segments_registrations r ON r.customer_id = c.customer_id
WINDOW w AS (PARTITION BY c.customer_id ORDER BY c.t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""
"""Intervals `[valid_from, valid_to)`, the last one ending when the customer was forgotten (else never);
`tier_since`: the start of the run of intervals of its tier (the last instant the tier changed)."""

CUSTOMERS_ = """
SELECT c.customer_id, c.registered_at, c.forgotten_at, c.channel, COALESCE(s.n, 0) AS span_count,
       COALESCE(i.n, 0) AS interval_count, c.region, c.industry
FROM segments_registrations c
LEFT JOIN (SELECT customer_id, count(*) AS n FROM segments_spans_rows GROUP BY customer_id) AS s
     ON s.customer_id = c.customer_id
LEFT JOIN (SELECT customer_id, count(*) AS n FROM segments_intervals_rows GROUP BY customer_id) AS i
     ON i.customer_id = c.customer_id
"""

_SUMMED = (("customers", "1"), ("value_cents", "monetary_cents"), ("recency", "recency"), ("frequency", "frequency"),
           ("monetary", "monetary"))  # `tier_tallies.SUMS`: what one interval adds to its tier
TALLY_CHANGES = f"""
SELECT grain, period, CAST(('0x' || right(customer_id, 2)) AS INTEGER) & {PARTITIONS - 1} AS part, tier, sign,
       {', '.join(f"{value} AS {name}" for name, value in _SUMMED)}, unconverted
FROM (SELECT *, valid_from AS "at", 1 AS sign FROM segments_intervals_rows
      UNION ALL
      SELECT *, valid_to AS "at", -1 AS sign FROM segments_intervals_rows WHERE valid_to IS NOT NULL) AS c,
     (SELECT 'd' AS grain UNION ALL SELECT 'm') AS g,
     LATERAL (SELECT CASE g.grain WHEN 'd' THEN c."at" // {_DAY}
                     ELSE CAST(date_trunc('month', make_timestamp(c."at")) AS DATE) - DATE '1970-01-01' END AS period)
WHERE tier IS NOT NULL
"""
"""Each interval as two dated changes to its tier, +1 at `valid_from` and −1 at `valid_to` (`tier_tallies`), in
the UTC day and month of each; `part`: the customer's home partition, its id's low bits (`domain.partitions`)."""

TALLIES_ = f"""
SELECT s.grain, s.period, s.part, s.tier, {', '.join(f"s.{name}" for name, _ in _SUMMED)}, u.unconverted
FROM (SELECT grain, period, part, tier, {', '.join(f"CAST(SUM(sign * {name}) AS BIGINT) AS {name}" for name, _ in _SUMMED)}
      FROM segments_tally_changes GROUP BY grain, period, part, tier) AS s
LEFT JOIN (SELECT grain, period, part, tier,
                  '{{' || string_agg('"' || currency || '":' || CAST(total AS VARCHAR), ',' ORDER BY currency)
                  || '}}' AS unconverted
           FROM (SELECT grain, period, part, tier, currency,
                        SUM(sign * CAST(json_extract(unconverted, '$."' || currency || '"') AS BIGINT)) AS total
                 FROM (SELECT *, unnest(json_keys(unconverted)) AS currency FROM segments_tally_changes
                       WHERE unconverted IS NOT NULL) AS a
                 GROUP BY grain, period, part, tier, currency) AS a
           WHERE total <> 0 GROUP BY grain, period, part, tier) AS u
     ON u.grain = s.grain AND u.period = s.period AND u.part = s.part AND u.tier = s.tier
WHERE u.unconverted IS NOT NULL OR {' OR '.join(f"s.{name} <> 0" for name, _ in _SUMMED)}
"""
"""The tallies: the changes summed per period, partition and tier, unconverted amounts per currency (zero sums
left out); a tally that sums to nothing is not written, as the handlers delete it."""

STEPS: tuple[tuple[str, str], ...] = (
    ("segments_log", LOG),
    ("segments_deal_events", DEAL_EVENTS),
    ("segments_span_events", SPAN_EVENTS),
    ("segments_spans_rows", SPANS_),
    ("segments_deals_rows", DEALS_),
    ("segments_cny_rates", CNY_RATES),
    ("segments_rates_rows", RATES_),
    ("segments_touches_rows", TOUCHES_),
    ("segments_registrations", REGISTRATIONS),
    ("segments_facts", FACTS),
    ("segments_instants", INSTANTS),
    ("segments_sums", SUMS),
    ("segments_pipeline_counts", PIPELINE_COUNTS),
    ("segments_unconverted_sums", UNCONVERTED_SUMS),
    ("segments_latest", LATEST),
    ("segments_preferred", PREFERRED),
    ("segments_unconverted", UNCONVERTED),
    ("segments_scored", SCORED),
    ("segments_changes", CHANGES),
    ("segments_intervals_rows", INTERVALS_),
    ("segments_customers_rows", CUSTOMERS_),
    ("segments_tally_changes", TALLY_CHANGES),
    ("segments_tallies_rows", TALLIES_),
    *property_fold_steps("segments", "segments_log"),
)
"""The fold, in order: each SELECT reads `log_events` or earlier steps by name."""

TABLES: dict[str, str] = {
    CUSTOMERS.name: "segments_customers_rows", DEALS.name: "segments_deals_rows", SPANS.name: "segments_spans_rows",
    TOUCHES.name: "segments_touches_rows", INTERVALS.name: "segments_intervals_rows", RATES.name: "segments_rates_rows",
    PROPERTIES.versions.name: "segments_properties_rows", PROPERTIES.current.name: "segments_current_properties_rows",
    TALLIES.name: "segments_tallies_rows",
}
"""Read-model table → the step with its rows."""

CHECKS: dict[str, str] = {
    "a deal changed before it was opened": """
SELECT MIN(position) FROM segments_deal_events WHERE customer_id IS NULL""",
    "a customer forgotten with neither a registration nor a deal before": """
SELECT MIN(f.position) FROM segments_log f
JOIN segments_registrations c ON c.customer_id = f.aggregate_id AND c.registered_at IS NULL
WHERE f.kind = 'Customer' AND f.event = 'Forgotten'
  AND NOT EXISTS (SELECT 1 FROM segments_spans_rows s WHERE s.customer_id = c.customer_id AND s.position < f.position)""",
}
"""Where the handlers stop (`_deal`'s assert; a timeline with no start: `min()` of nothing), as the first log
position breaking each (`services/bulk`: the handlers rebuild the segments then, and stop there). The second
may find one the handlers pass (a deal of the customer in the same batch): the handlers' rebuild is then only
slower, never different."""
