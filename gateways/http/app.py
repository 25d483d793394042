"""`create_app`: the HTTP API over one event log (and its read models, in the same database)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from domain.base import Meta
from gateways.http.auth import BearerBeforeBody
from gateways.http.availability import DatabaseGuard, DatabaseProbe
from gateways.http.error_responses import install_error_handlers
from gateways.http.freshness_headers import FreshnessHeaders, document_freshness
from gateways.http.limits import BodyLimit
from gateways.http.request_metrics import RequestMetrics
from gateways.http.responses import OrjsonResponse
from gateways.http.routes import ROUTERS
from gateways.http.tokens import TokenRegistry
from gateways.web.dashboard import router as dashboard
from services.application import CrmApplication
from services.metrics import Source, consumer_group_source, instruments, partition_offsets_source, standard_registry
from services.projection_runtime.background import BackgroundProjector
from services.projection_runtime.partition_ends import PartitionEnds
from services.projection_runtime.readiness import ready_max_lag_from_environment
from services.projection_runtime.registry import READ_MODELS, set_up_read_models
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock
from services.settings import Database, database_from_environment
from services.sharding.bootstrap import single_log
from services.sharding.router import ShardedApplication
from services.sharding.shard_settings import shards_from_environment

if TYPE_CHECKING:  # imported by the reading thread: a server without Kafka never loads kafka-python
    from gateways.kafka.relay import TopicHeadReader

MAX_BODY_BYTES = 64 * 1024
DESCRIPTION = """Commands on the CRM's event log and queries on its aggregates and read models.

Every route but `GET /health` and `GET /health/live` needs `Authorization: Bearer <token>`. Commands accept
`occurred_at` (business time), `X-Correlation-Id`, `Idempotency-Key` (a retry returns the first answer) and, on
versioned changes, `If-Match: "<version>"` (stale → 409). Errors are `{"error": message, "detail": …}`.

A change answers `X-Log-Position` (over shards `partition:position`); a read-model query answers from what the
projectors have applied, never catching up itself, says how fresh that is (`X-Read-Model-Position`,
`X-Log-Position`, over shards `X-Read-Model-Lag`) and, given `?wait_for_position=`, waits (≤ 5 s, then 503
with `Retry-After`) until your write is applied.
"""
PROJECTOR_VARIABLE = "CRM_SERVE_PROJECTOR"
KAFKA_VARIABLE = "CRM_KAFKA_BOOTSTRAP"  # also gateways.cli: where `crm relay` and consumers find the broker
RELAYS = ("kafka-relay",)  # gateways.kafka.relay.RELAY_NAME (not imported: kafka-python would load in every worker)
TOPIC = "crm.events"  # gateways.kafka.relay.TOPIC (not imported, as above)
HEADS_TIMEOUT_MS = 5_000  # a reading stuck longer is given up: the cache's own reading is then 5 s old, too old
STARTUP_LOCK = 0x43524D5F53525645  # a PostgreSQL advisory lock key ("CRM_SRVE"): one worker starts at a time


def kafka_lag_sources(bootstrap: str, store: ReadModelStore, topic: str = TOPIC) -> list[Source]:
    """With a broker named (CRM_KAFKA_BOOTSTRAP): the consumer group's lag and each read model's lag per
    partition against the topic's heads, read at scrape time. kafka-python is imported only then, so a
    server without Kafka never loads it."""
    def heads() -> dict[int, int]:
        from gateways.kafka.relay import topic_heads
        return topic_heads(bootstrap, topic)

    def group_lag() -> dict[tuple[str, int], int]:
        from gateways.kafka.projection_consumer import GROUP, consumer_group_lag
        return {(GROUP, partition): lag for partition, lag in consumer_group_lag(bootstrap, topic=topic).items()}
    return [partition_offsets_source(store, heads), consumer_group_source(group_lag)]


def kafka_partition_ends(bootstrap: str, topic: str = TOPIC) -> PartitionEnds:
    """The topic's end offsets, read every second in the background for the queries' X-Read-Model-Lag
    (services.projection_runtime.partition_ends says why not per query). The client is opened in the reading
    thread, on its first reading: a broker away when the server starts leaves the lag unknown until it
    answers, and never delays the start (kafka-python's constructor waits for a broker)."""
    readers: list[TopicHeadReader] = []

    def read() -> dict[int, int]:
        from gateways.kafka.relay import TopicHeadReader
        if not readers:
            readers.append(TopicHeadReader(bootstrap, topic, timeout_ms=HEADS_TIMEOUT_MS))
        return {partition: head + 1 for partition, head in readers[0].read().items()}

    def close() -> None:
        for reader in readers:
            reader.close()

    return PartitionEnds(read, close=close)


def create_app(database: Database, tokens: TokenRegistry, follow_log: bool = False,
               shards: Sequence[Database] | None = None, topic: str = TOPIC) -> FastAPI:
    """The API on `database`: opens the log and a read store now, closes them at shutdown. Queries only
    read; `follow_log` runs a projector in the background while the app runs (as `crm serve` does), else
    the read models are as fresh as some other projector makes them (`crm projections follow`).

    With `shards` (CRM_SHARD_URLS) the commands go to the router over them and the read models live in the
    first (`database` is ignored); no local projector follows, there being no single log to follow: the
    read models are fed by `crm projections consume` from the shards' relays, and with CRM_KAFKA_BOOTSTRAP
    set the queries report their lag against `topic`'s ends (X-Read-Model-Lag)."""
    crm: CrmApplication = ShardedApplication(shards) if shards else CrmApplication(database)  # type: ignore[assignment]
    database = crm.database
    crm.ensure_default_pipelines(Meta(actor="system"))
    store = ReadModelStore(database)
    follow_log = follow_log and not shards
    online = follow_log and database.kind != "memory"  # its projector builds changed read models online
    set_up_read_models(single_log(crm), store, keep_changed=online)
    projector = (BackgroundProjector(crm, store if database.kind == "memory" else None, online=online)
                 if follow_log else None)
    bootstrap = os.environ.get(KAFKA_VARIABLE, "").strip()
    ends = kafka_partition_ends(bootstrap, topic) if shards and bootstrap else None

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        for started in (projector, ends):
            if started:
                started.start()
        yield
        for started in (projector, ends):
            if started:
                started.stop()
        store.close()
        crm.close()

    api = FastAPI(title="Event-sourced CRM", version="1", description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=OrjsonResponse)
    api.state.crm, api.state.store, api.state.tokens = crm, store, tokens
    api.state.projector = projector  # /health tells why it does not feed, if it refused (consumers feed)
    # over shards the follower's head − position means nothing (consumers feed the read models per partition):
    # readiness judges only stopped read models until their per-partition lag is wired in
    api.state.ready_max_lag = None if shards else ready_max_lag_from_environment()
    api.state.metrics = standard_registry(crm, store, list(READ_MODELS), RELAYS)
    api.state.partition_heads = ends  # gateways.http.partition_waits: X-Read-Model-Lag over shards
    if bootstrap:
        for source in kafka_lag_sources(bootstrap, store, topic):
            api.state.metrics.add(source)
    api.add_middleware(FreshnessHeaders, crm=crm)
    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    api.add_middleware(DatabaseGuard, probe=DatabaseProbe(store))
    api.add_middleware(BearerBeforeBody, tokens=tokens)  # before the others: a stranger's body is never read
    api.add_middleware(RequestMetrics, instruments=instruments())  # outermost: counts every answer
    install_error_handlers(api)
    for router in (*ROUTERS, dashboard):  # the dashboard's page and static files are public and hold no data
        api.include_router(router)
    document_freshness(api)
    return api


def app_from_environment() -> FastAPI:
    """The app factory of each `crm serve --workers N` process: CRM_DATABASE_URL, CRM_API_TOKENS_FILE and
    CRM_SERVE_PROJECTOR (set by `crm serve --no-projector` to "0": another process follows the log).

    Workers start one at a time: their first-start DDL (triggers, tables) would collide if run at once.
    """
    shards = shards_from_environment()
    database = shards[0] if shards else database_from_environment()
    with advisory_lock(database, STARTUP_LOCK):  # before the application's SCHEMA_LOCK, always
        return create_app(database, TokenRegistry.from_env(), os.environ.get(PROJECTOR_VARIABLE, "1") != "0",
                          shards)
