"""The funnel read model's tables and their typed rows, one row type per table (its columns, by name).

The rows are TypedDicts: the very dicts the batch's row cache (`projections.read_model.Rows`) holds and writes
back, with their keys and value types declared. A NamedTuple per row would have to be turned into a dict
for the cache on every put: ≈ 1.7 µs a row more than a dict (timeit), three new rows an event, ≈ 10% of
this read model's handling time on a demo log of 61k events; and an item's row is changed in place on
each of its events, which a frozen row would have to copy.
"""

from __future__ import annotations

from typing import Any, TypedDict

from projections.tables import Table

Change = dict[str, int]
"""What one event changes in its pipeline's funnel, `{key: delta}` (the keys are explained in `tally`)."""


class CustomerRow(TypedDict):
    customer_id: str
    region: str
    industry: str
    channel: str


class ItemRow(TypedDict):
    """A pipeline item now: its stage since when (and the one before), its owner and amount since when,
    and the furthest stage it has reached (a level of `domain.funnel_rules.stage_levels`)."""

    item_id: str
    pipeline: str
    customer_id: str | None
    campaign_id: str | None
    region: str | None
    industry: str | None
    channel: str | None
    opened_at: int
    stage: str
    prev_stage: str | None
    stage_seq: int  # the item's version that moved it into `stage`: the key of its open interval
    stage_entered_at: int
    owner: str
    amount_cents: int
    version_seq: int  # the item's version that set owner and amount: the key of its open version
    version_from: int
    furthest: str | None
    currency: str  # of its amounts, which never changes ("" for an item without amounts: leads, tickets)


class IntervalRow(TypedDict):
    """An item's stay in a stage, `[entered_at, left_at)`; `left_at`, `length` and `length_band` are None while
    it lasts."""

    item_id: str
    seq: int
    pipeline: str
    stage: str
    prev_stage: str | None
    entered_at: int
    left_at: int | None
    length: int | None
    length_band: int | None  # `length_band(length)`: finds the stays covering an instant by index


class VersionRow(TypedDict):
    """An item's owner and amount over `[valid_from, valid_to)`; `valid_to` is None for the current one."""

    item_id: str
    seq: int
    owner: str
    amount_cents: int
    valid_from: int
    valid_to: int | None


class PropertyRow(TypedDict):
    """A deal's, lead's or customer's named property over `[valid_from, valid_to)` (None: still so); an
    absent property has no row."""

    subject_id: str
    name: str
    seq: int  # the subject's version that set it
    value: str
    valid_from: int
    valid_to: int | None


class CurrentPropertyRow(TypedDict):
    """A subject's property now ("" once removed): the key of its open `PropertyRow`, found without a scan."""

    subject_id: str
    name: str
    seq: int
    value: str
    valid_from: int


class PipelineRow(TypedDict):
    """A pipeline's open stages in order (held as a JSON list while a batch changes it)."""

    pipeline_id: str
    pipeline: str
    stages: Any  # list[str] once held (`tables.held_json`), JSON text as read


class HeldPipelineRow(PipelineRow, total=False):
    """A pipeline's row as the batch's row cache holds it, with its stages' levels worked out once."""

    _levels: dict[str, int]  # not a column (`Table.row_values` writes the columns only)


class TallyRow(TypedDict):
    """The sum of a pipeline's changes over one local day (`grain` "d") or month ("m"), `period` its first day,
    of the items of one home partition (`part`, `domain.partitions`): projectors fed different partitions
    at once add to different rows; queries sum the partitions (or read their `SumRow`)."""

    pipeline: str
    grain: str
    period: int
    part: int
    n: int  # how many changes (`funnel_changes` rows) it sums: grows with each, so a `SumRow` can tell it is stale
    deltas: Any  # Change once held (`tables.held_json`), JSON text as read


class SumRow(TypedDict):
    """The tallies of one closed day, month or year ("y": of its months) of a pipeline summed over every home
    partition (`tally.refresh_sums`): what a query reads instead of up to 64 partitions' rows (12 months' sums),
    when `n` still equals the sum of theirs."""

    pipeline: str
    grain: str
    period: int
    n: int  # Σ of the partitions' `TallyRow.n` it was summed from
    deltas: Any


class ChangeRow(TypedDict):
    item_id: str
    seq: int
    pipeline: str
    at: int
    deltas: Change


BAND_BASE_BITS = 32  # band 0: stays under 2³² µs (≈ 1.2 h); band b ≥ 1: [2^(31+b), 2^(32+b)) µs
MAX_BAND = 63 - BAND_BASE_BITS  # a BIGINT length has at most 63 bits


def length_band(length: int) -> int:
    """The power-of-two band of an ended stay's length (µs). The stays covering an instant t and begun before
    t − d are, in band b, those begun in (t − 2^(32+b), t − d): one index range per band
    (`(pipeline, length_band, entered_at)`), each at most ≈ twice the stays it finds, whatever the length of
    the history — where a scan of the stays begun before t − d reads them all (`queries._stuck_by`)."""
    return max(0, length.bit_length() - BAND_BASE_BITS)


def band_upper(band: int) -> int:
    """The length (µs) every stay of `band` is shorter than."""
    return 1 << (BAND_BASE_BITS + band)


def length_band_sql(length: str) -> str:
    """`length_band` of the SQL expression `length` (µs, ≥ 0, or NULL: NULL), as a CASE any engine runs
    (DuckDB, Spark, PostgreSQL, SQLite): no logarithm, whose rounding at a power of two could differ."""
    bands = " ".join(f"WHEN {length} < {band_upper(band)} THEN {band}" for band in range(MAX_BAND))
    return f"CASE WHEN {length} IS NULL THEN NULL {bands} ELSE {MAX_BAND} END"


CUSTOMERS = Table(
    "funnel_customers",
    (("customer_id", "TEXT"), ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT")),
    ("customer_id",), row_type=CustomerRow)
ITEMS = Table(
    "funnel_items",
    (("item_id", "TEXT"), ("pipeline", "TEXT"), ("customer_id", "TEXT"), ("campaign_id", "TEXT"),
     ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT"), ("opened_at", "BIGINT"),
     ("stage", "TEXT"), ("prev_stage", "TEXT"), ("stage_seq", "INTEGER"), ("stage_entered_at", "BIGINT"),
     ("owner", "TEXT"), ("amount_cents", "BIGINT"), ("version_seq", "INTEGER"), ("version_from", "BIGINT"),
     ("furthest", "TEXT"), ("currency", "TEXT")),
    ("item_id",), row_type=ItemRow)
INTERVALS = Table(
    "funnel_intervals",
    (("item_id", "TEXT"), ("seq", "INTEGER"), ("pipeline", "TEXT"), ("stage", "TEXT"), ("prev_stage", "TEXT"),
     ("entered_at", "BIGINT"), ("left_at", "BIGINT"), ("length", "BIGINT"), ("length_band", "INTEGER")),
    ("item_id", "seq"),
    indexes=(("pipeline", "entered_at"), ("pipeline", "stage", "left_at"), ("pipeline", "length"),
             ("pipeline", "length_band", "entered_at")),
    row_type=IntervalRow)
VERSIONS = Table(
    "funnel_versions",
    (("item_id", "TEXT"), ("seq", "INTEGER"), ("owner", "TEXT"), ("amount_cents", "BIGINT"),
     ("valid_from", "BIGINT"), ("valid_to", "BIGINT")),
    ("item_id", "seq"), row_type=VersionRow)
PROPERTIES = Table(
    "funnel_properties",
    (("subject_id", "TEXT"), ("name", "TEXT"), ("seq", "INTEGER"), ("value", "TEXT"), ("valid_from", "BIGINT"),
     ("valid_to", "BIGINT")),
    ("subject_id", "name", "seq"), row_type=PropertyRow)
CURRENT_PROPERTIES = Table(
    "funnel_current_properties",
    (("subject_id", "TEXT"), ("name", "TEXT"), ("seq", "INTEGER"), ("value", "TEXT"), ("valid_from", "BIGINT")),
    ("subject_id", "name"), row_type=CurrentPropertyRow)
PIPELINES = Table("funnel_pipelines", (("pipeline_id", "TEXT"), ("pipeline", "TEXT"), ("stages", "TEXT")),
                  ("pipeline_id",), json_columns=("stages",), row_type=PipelineRow)
TALLIES = Table(
    "funnel_tallies",
    (("pipeline", "TEXT"), ("grain", "TEXT"), ("period", "INTEGER"), ("part", "INTEGER"), ("n", "BIGINT"),
     ("deltas", "TEXT")),
    ("pipeline", "grain", "period", "part"),
    json_columns=("deltas",), row_type=TallyRow)
SUMS = Table(
    "funnel_sums",
    (("pipeline", "TEXT"), ("grain", "TEXT"), ("period", "INTEGER"), ("n", "BIGINT"), ("deltas", "TEXT")),
    ("pipeline", "grain", "period"),
    json_columns=("deltas",), row_type=SumRow)
CHANGES = Table(
    "funnel_changes",
    (("item_id", "TEXT"), ("seq", "INTEGER"), ("pipeline", "TEXT"), ("at", "BIGINT"), ("deltas", "TEXT")),
    ("item_id", "seq"),
    indexes=(("pipeline", "at"),),
    json_columns=("deltas",), row_type=ChangeRow)
TALLY_TABLES = (PIPELINES, TALLIES, SUMS, CHANGES)
TABLES = (CUSTOMERS, ITEMS, INTERVALS, VERSIONS, PROPERTIES, CURRENT_PROPERTIES, *TALLY_TABLES)
