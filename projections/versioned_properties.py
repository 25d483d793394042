"""Named properties (`domain.properties`) kept as versions `[valid_from, valid_to)`, so a report as of T can
group or filter by a record's property as it was then: the two tables a read model declares under its own
prefix (a read model never reads another's tables) and the handler step that closes and opens versions.

`<prefix>_properties` holds every version; `<prefix>_current_properties` the open one per (subject, name), so
a change finds the version to close by key, without a scan. A removal ("") closes the version and opens none.
`fold_steps` is the same rule set-based, for a bulk rebuild (SQL text, DuckDB's dialect).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from projections.read_model import Rows
from projections.tables import Table


class VersionRow(NamedTuple):
    """A subject's property `name` was `value` during `[valid_from, valid_to)`; valid_to None: still."""

    subject_id: str
    name: str
    seq: int  # the subject's event version that set it
    value: str
    valid_from: int
    valid_to: int | None


class CurrentRow(NamedTuple):
    """The latest value of the subject's property (\"\": removed) and when it was set."""

    subject_id: str
    name: str
    seq: int
    value: str
    valid_from: int


class PropertyTables(NamedTuple):
    versions: Table
    current: Table


def property_tables(prefix: str) -> PropertyTables:
    """The two tables of a read model called `prefix`."""
    return PropertyTables(
        Table(f"{prefix}_properties",
              (("subject_id", "TEXT"), ("name", "TEXT"), ("seq", "INTEGER"), ("value", "TEXT"),
               ("valid_from", "BIGINT"), ("valid_to", "BIGINT")),
              ("subject_id", "name", "seq"), indexes=(("name", "subject_id"),), row_type=VersionRow),
        Table(f"{prefix}_current_properties",
              (("subject_id", "TEXT"), ("name", "TEXT"), ("seq", "INTEGER"), ("value", "TEXT"),
               ("valid_from", "BIGINT")),
              ("subject_id", "name"), row_type=CurrentRow))


def record_changes(tables: PropertyTables, subject_id: str, changes: dict[str, str], seq: int, at: int,
                   rows: Rows) -> None:
    """End each changed property's open version at `at` (µs) and open the new one (none for a removal)."""
    for name, value in changes.items():
        current: CurrentRow | None = rows.get(tables.current, subject_id, name)
        if (current.value if current is not None else "") == value:
            continue  # unchanged (an imported history may say so twice)
        if current is not None and current.value:
            rows.put(tables.versions, VersionRow(*current, valid_to=at))
        rows.put(tables.current, CurrentRow(subject_id, name, seq, value, at))
        if value:
            rows.put(tables.versions, VersionRow(subject_id, name, seq, value, at, None))


def value_as_of_sql(table: Table, alias: str, subject: str) -> str:
    """A LEFT JOIN of the version of property ? of `subject` (an SQL column) covering instant ? (twice): its
    parameters are (name, t, t); `{alias}.value` is NULL when the subject had none then."""
    return (f" LEFT JOIN {table.name} {alias} ON {alias}.subject_id = {subject} AND {alias}.name = ? "
            f"AND {alias}.valid_from <= ? AND ({alias}.valid_to IS NULL OR {alias}.valid_to > ?)")


def join_params(name: str, t: int) -> list[Any]:
    return [name, t, t]


def fold_steps(prefix: str, log: str, subjects: str) -> tuple[tuple[str, str], ...]:
    """`record_changes` set-based: the steps (name, SELECT) that build `<prefix>_properties_rows` and
    `<prefix>_current_properties_rows` from the step `log` (aggregate_id, position, version, "at", changes as
    JSON) where `subjects` (an SQL condition on it) holds. A change to what the property already is writes
    nothing; a removal ("") ends the open version and opens none, but is the current row. The value before an
    event is the last event's (each event's value is the property's value after it). `<prefix>_property_changes`
    keeps each value's JSON type (`value_type`), for a fold's check that values are text."""
    changes, versions = f"{prefix}_property_changes", f"{prefix}_property_versions"
    return (
        (changes, f"""
SELECT p.*, LAG(value) OVER (PARTITION BY subject_id, name ORDER BY seq) AS value_before
FROM (SELECT aggregate_id AS subject_id, position, property AS name, version AS seq, "at",
             json_extract_string(changes, '$.' || property) AS value, json_type(changes, '$.' || property) AS value_type
      FROM (SELECT aggregate_id, position, version, "at", changes, UNNEST(json_keys(changes)) AS property
            FROM {log} WHERE event = 'PropertiesChanged' AND ({subjects})) AS u) AS p
"""),
        (versions, f"""
SELECT subject_id, name, seq, value, "at" AS valid_from,
       LEAD("at") OVER (PARTITION BY subject_id, name ORDER BY seq) AS valid_to
FROM {changes} WHERE value <> COALESCE(value_before, '')
"""),
        (f"{prefix}_properties_rows", f"SELECT subject_id, name, seq, value, valid_from, valid_to FROM {versions} "
                                      "WHERE value <> ''"),
        (f"{prefix}_current_properties_rows", f"SELECT subject_id, name, seq, value, valid_from FROM {versions} "
                                              "WHERE valid_to IS NULL"),
    )
