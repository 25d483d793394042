"""Which application a process runs: one database (CRM_SHARD_URLS unset: exactly as before) or the router
over the shards. The gateways open the CRM through here, so that `crm serve` and every CLI command follow
the same setting."""

from __future__ import annotations

from typing import Union

from services.application import CrmApplication
from services.settings import Database, database_from_environment
from services.sharding.router import ShardedApplication
from services.sharding.shard_settings import shards_from_environment

AnyApplication = Union[CrmApplication, ShardedApplication]


def open_application(database: Database | None = None) -> AnyApplication:
    """The router over CRM_SHARD_URLS when set (its default shard holds the read models), else the one
    database `database` (default: CRM_DATABASE_URL)."""
    shards = shards_from_environment()
    if shards is None:
        return CrmApplication(database or database_from_environment())
    return ShardedApplication(shards)


def single_log(app: AnyApplication) -> CrmApplication:
    """The application whose one log a local projector may follow: the only one, or — sharded — the
    default shard's, which a projector may use to set up the read models' tables (it holds them), never
    to follow: a sharded installation's read models are fed by consumers of Kafka."""
    return app.default if isinstance(app, ShardedApplication) else app
