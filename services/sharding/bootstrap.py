"""Which application a process runs: one database (CRM_SHARD_URLS unset: exactly as before) or the router
over the shards. The gateways open the CRM through here, so that `crm serve` and every CLI command follow
the same setting."""

from __future__ import annotations

import sqlite3
from typing import Union

from services.application import CrmApplication
from services.settings import Database, database_from_environment
from services.sharding.router import ShardedApplication
from services.sharding.shard_map import load_map
from services.sharding.shard_settings import shards_from_environment

AnyApplication = Union[CrmApplication, ShardedApplication]


def open_application(database: Database | None = None, sync: bool = True) -> AnyApplication:
    """The router over CRM_SHARD_URLS when set (its default shard holds the read models), else the one
    database `database` (default: CRM_DATABASE_URL). `sync`: copy missing reference data first (a server's
    start); a one-shot CLI command skips it — it reads every shard's reference events, seconds with a large
    rates history — and leaves healing to the servers' starts and `crm shards sync`."""
    shards = shards_from_environment()
    if shards is None:
        return CrmApplication(database or database_from_environment())
    return ShardedApplication(shards, sync=sync)


def single_log(app: AnyApplication) -> CrmApplication:
    """The application whose one log a local projector may follow: the only one, or — sharded — the
    default shard's, which a projector may use to set up the read models' tables (it holds them), never
    to follow: a sharded installation's read models are fed by consumers of Kafka."""
    return app.default if isinstance(app, ShardedApplication) else app


def check_shard_map(shards: list[Database] | None) -> None:
    """Before a server starts its workers: the partition → shard table against the shards listed, so that a
    mismatch is one message rather than every worker failing to boot. A database that does not answer yet
    is left to the workers, which wait for it."""
    if not shards:
        return
    import psycopg

    try:
        load_map(shards[0], len(shards))
    except (psycopg.OperationalError, sqlite3.OperationalError):
        pass
