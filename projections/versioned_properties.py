"""Named properties (`domain.properties`) kept as versions `[valid_from, valid_to)`, so a report as of T can
group or filter by a record's property as it was then: the two tables a read model declares under its own
prefix (a read model never reads another's tables) and the handler step that closes and opens versions.

`<prefix>_properties` holds every version; `<prefix>_current_properties` the open one per (subject, name), so
a change finds the version to close by key, without a scan. A removal ("") closes the version and opens none.
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


def property_fold_steps(prefix: str, log: str) -> tuple[tuple[str, str], ...]:
    """`record_changes` folded set-based (issue 14's bulk path): named SELECTs, in order, over a fold's step `log`
    (columns aggregate_id, version, event, "at", and `changes`, the JSON of a `PropertiesChanged`), ending in
    `<prefix>_properties_rows` and `<prefix>_current_properties_rows`, the two tables' rows.

    The event's value is the property's value after it, so the one before is the previous event's (what
    `record_changes` finds in the current row): a change to what it already is writes nothing; a removal ("")
    ends the open version and opens none, but is the current row."""
    changes = f"""
SELECT p.*, LAG(value) OVER (PARTITION BY subject_id, name ORDER BY seq) AS value_before
FROM (SELECT aggregate_id AS subject_id, name, version AS seq, "at",
             json_extract_string(changes, '$.' || name) AS value
      FROM (SELECT e.*, UNNEST(json_keys(changes)) AS name FROM {log} e
            WHERE event = 'PropertiesChanged') AS u) AS p
"""
    versions = f"""
SELECT subject_id, name, seq, value, "at" AS valid_from,
       LEAD("at") OVER (PARTITION BY subject_id, name ORDER BY seq) AS valid_to
FROM {prefix}_property_changes
WHERE value <> COALESCE(value_before, '')
"""
    return (
        (f"{prefix}_property_changes", changes),
        (f"{prefix}_property_versions", versions),
        (f"{prefix}_properties_rows", "SELECT subject_id, name, seq, value, valid_from, valid_to "
                                      f"FROM {prefix}_property_versions WHERE value <> ''"),
        (f"{prefix}_current_properties_rows", "SELECT subject_id, name, seq, value, valid_from "
                                              f"FROM {prefix}_property_versions WHERE valid_to IS NULL"),
    )
