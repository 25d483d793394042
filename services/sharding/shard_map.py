"""The partition → shard table, `crm_shard_map(partition, shard)`, kept in the default shard.

Which database holds a partition is data, not a formula, so that resharding later moves whole partitions by
changing rows (and copying their events), never ids. `crm db migrate` creates it (as the owner role, the
application may only read it: a row changed by mistake would send a record's commands to a database that does
not have it) and fills it with the default, partition p on shard p mod n; on SQLite the application creates it
itself, as it does its log. Every start reads it and refuses to run if it disagrees with the shards configured
— a partition on a shard that is not listed, a shard listed that holds no partition, missing partitions —
because routing by a wrong table writes records where their later commands will not find them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from domain.partitions import PARTITIONS
from services.settings import Database, SettingsError

TABLE = "crm_shard_map"
_DDL = (f"CREATE TABLE IF NOT EXISTS {{table}} (partition SMALLINT PRIMARY KEY CHECK (partition >= 0 AND "
        f"partition < {PARTITIONS}), shard SMALLINT NOT NULL CHECK (shard >= 0))")


class ShardMapMismatch(SettingsError):
    """The partition → shard table does not fit the shards configured: nothing is started."""


def default_map(shards: int) -> dict[int, int]:
    """Partition p on shard p mod n: each shard gets ⌊64/n⌋ or ⌈64/n⌉ partitions (3 shards: 22, 21, 21)."""
    return {partition: partition % shards for partition in range(PARTITIONS)}


def check_map(mapping: Mapping[int, int], shards: int) -> dict[int, int]:
    """`mapping` if it places every partition on one of the `shards` shards and leaves none of them empty."""
    missing = sorted(set(range(PARTITIONS)) - set(mapping))
    if missing:
        raise ShardMapMismatch(f"{TABLE} places no shard for partitions {_ranges(missing)}: run `crm db migrate` "
                               "with CRM_SHARD_OWNER_URLS set")
    beyond = sorted(p for p, shard in mapping.items() if not 0 <= shard < shards)
    if beyond:
        raise ShardMapMismatch(f"{TABLE} places partitions {_ranges(beyond)} on shard {mapping[beyond[0]]}, but "
                               f"CRM_SHARD_URLS lists {shards} shards (0 … {shards - 1}): list every shard the "
                               "table names, in its order")
    empty = sorted(set(range(shards)) - set(mapping.values()))
    if empty:
        raise ShardMapMismatch(f"CRM_SHARD_URLS lists {shards} shards but {TABLE} places no partition on shard(s) "
                               f"{', '.join(map(str, empty))}: adding a shard means moving partitions to it, not "
                               "only listing it")
    return dict(mapping)


def _ranges(partitions: list[int]) -> str:
    """[0, 1, 2, 5] → "0-2, 5"."""
    spans: list[list[int]] = []
    for p in partitions:
        if spans and p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def partition_ranges(mapping: Mapping[int, int], shard: int) -> str:
    """The partitions `shard` holds: ranges ("0-21, 40"), or a stride ("1-61 every 3rd", the default map's)."""
    held = sorted(p for p, s in mapping.items() if s == shard)
    steps = {b - a for a, b in zip(held, held[1:])}
    if len(held) > 2 and len(steps) == 1 and (step := steps.pop()) > 1:
        return f"{held[0]}-{held[-1]} every {step}{'nd' if step == 2 else 'rd' if step == 3 else 'th'}"
    return _ranges(held)


def create_map(owner: Database, shards: int, app_role: str | None) -> dict[int, int]:
    """As the owner of the default shard: the table (if missing) with the default rows for partitions it
    lacks, readable by `app_role`; returns the table as it now is (rows already there are kept)."""
    import psycopg
    from psycopg import sql

    table = sql.Identifier("public", TABLE)
    with psycopg.connect(owner.url, autocommit=True) as connection, connection.transaction():
        if connection.execute("SELECT to_regclass(%s)", [f"public.{TABLE}"]).fetchone() == (None,):
            _refuse_stranded_records(connection, shards)
        connection.execute(sql.SQL(_DDL.format(table="{}")).format(table))
        insert = sql.SQL("INSERT INTO {} (partition, shard) VALUES (%s, %s) ON CONFLICT (partition) DO NOTHING")
        connection.cursor().executemany(insert.format(table), list(default_map(shards).items()))
        connection.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(table))
        if app_role and app_role != owner.role:
            connection.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(app_role)))
        rows = connection.execute(sql.SQL("SELECT partition, shard FROM {}").format(table)).fetchall()
    return {int(p): int(s) for p, s in rows}


def _refuse_stranded_records(connection: Any, shards: int) -> None:
    """A database that already holds records (one used alone until now) cannot simply become the default
    shard: the records of partitions the default map puts elsewhere would not be found there."""
    from services.sharding.reference import reference_topics

    found = connection.execute(
        f"SELECT count(DISTINCT originator_id) FROM public.crm_events WHERE NOT topic = ANY(%s) "
        f"AND (('x' || right(originator_id::text, 2))::bit(8)::int & {PARTITIONS - 1}) %% %s <> 0",
        [list(reference_topics()), shards]).fetchone()[0]
    if found:
        raise ShardMapMismatch(f"the default shard already holds {found:,} records of partitions that {TABLE} would "
                               "place on other shards, where nobody would find them; moving records between "
                               "shards is not supported yet: start the shards on empty databases")


def load_map(default: Database, shards: int) -> dict[int, int]:
    """The table as the default shard holds it, checked against `shards` (memory: the default map)."""
    if default.kind == "memory":
        return default_map(shards)
    if default.kind == "sqlite":
        return check_map(_sqlite_map(str(default.sqlite_path), shards), shards)
    return check_map(_postgres_map(default), shards)


def _postgres_map(default: Database) -> dict[int, int]:
    import psycopg

    try:
        with psycopg.connect(default.url, connect_timeout=10) as connection:
            rows = connection.execute(f"SELECT partition, shard FROM public.{TABLE}").fetchall()
    except psycopg.errors.UndefinedTable:
        raise ShardMapMismatch(f"the default shard has no {TABLE}: run `crm db migrate` with CRM_SHARD_URLS and "
                               "CRM_SHARD_OWNER_URLS set (deploy/postgres.sh migrate does)") from None
    return {int(p): int(s) for p, s in rows}


def _sqlite_map(path: str, shards: int) -> dict[int, int]:
    """SQLite has no roles: the application creates and fills the table itself (once; kept after)."""
    with sqlite3.connect(path, timeout=10) as connection:
        connection.execute(_DDL.format(table=TABLE))
        connection.executemany(f"INSERT OR IGNORE INTO {TABLE} (partition, shard) VALUES (?, ?)",
                               list(default_map(shards).items()))
        rows = connection.execute(f"SELECT partition, shard FROM {TABLE}").fetchall()
    connection.close()
    return {int(p): int(s) for p, s in rows}
