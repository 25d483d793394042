"""`crm shards`: which partitions each shard holds and how many events it has; copy missing reference data."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from gateways.cli.common import console, crm_application, fail
from services.sharding.router import ShardedApplication
from services.sharding.shard_map import partition_ranges

shards_app = typer.Typer(help="The shards of the event log (CRM_SHARD_URLS): partitions, events, reference data.",
                         no_args_is_help=True)


def _where(url: str) -> str:
    """host:port/database, without the role and password."""
    return url.rpartition("@")[2]


@shards_app.command("list")
def list_shards(as_json: Annotated[bool, typer.Option("--json", help="Print the shards as JSON.")] = False) -> None:
    """Each shard's database, the partitions it holds and its events (the first is the default shard, which
    also holds the read models and the partition → shard table). Without CRM_SHARD_URLS: the one database."""
    with crm_application() as crm:
        rows = _rows(crm)
    if as_json:
        console.print(orjson.dumps(rows).decode(), soft_wrap=True)
        return
    table = Table("shard", "database", "partitions", "count", "events")
    for row in rows:
        table.add_row(str(row["shard"]), row["database"], row["partitions"], str(row["partition_count"]),
                      f"{row['events']:,}")
    console.print(table)


def _rows(crm: Any) -> list[dict[str, Any]]:
    if not isinstance(crm, ShardedApplication):
        return [{"shard": 0, "database": _where(crm.database.url), "partitions": "0-63", "partition_count": 64,
                 "events": crm.event_count()}]
    counts = crm.event_counts()
    return [{"shard": number, "database": _where(app.database.url),
             "partitions": partition_ranges(crm.shard_map, number),
             "partition_count": list(crm.shard_map.values()).count(number), "events": counts[number]}
            for number, app in enumerate(crm.apps)]


@shards_app.command("sync")
def sync() -> None:
    """Copy to every shard the reference data (pipelines, vocabularies, rates, campaigns) it lacks: after a
    process died between two shards. Idempotent; every server start (`crm serve`) does it too."""
    with crm_application() as crm:
        if not isinstance(crm, ShardedApplication):
            raise fail("CRM_SHARD_URLS is not set: one database holds everything, there is nothing to copy")
        copied = crm.sync()
    console.print(f"Copied {sum(copied):,} reference events: " +
                  ", ".join(f"shard {n}: {c:,}" for n, c in enumerate(copied)) + ".")
