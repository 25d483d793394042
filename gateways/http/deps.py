"""Shared dependencies: the application, and the read store with the freshness of its answer.

A query never catches a read model up (that would make a GET write rows and race the projector): it
answers from what the projector has applied and says how far that is, in two headers on every read-model
answer — `X-Read-Model-Position` (the last log position the read models it reads have applied) and
`X-Log-Position` (the log's head). Headers, not a body field: every answer's body keeps its shape (lists,
pages, reports), and a change's answer carries `X-Log-Position` too, so one header name links a write to the
`?wait_for_position=` that reads it back. Over shards both name partitions (`partition:position`: see
gateways.http.partition_waits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Annotated

from fastapi import Depends, Query, Request

from domain.periods import zone_named
from gateways.http.error_responses import ApiError
from gateways.http.partition_waits import partitioned_read
from services.application import CrmApplication
from services.projection_runtime.freshness import (LONGEST_WAIT, BeyondHead, Freshness, NotYetApplied,
                                                   ReadModelNotBuilt, freshness, wait_for_position)
from services.projection_runtime.schema_change import ReadModelRebuilding
from services.settings import time_zone_from_environment
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore

WAIT_RETRY_AFTER = "1"  # seconds: a running projector applies a write in well under that
LAST_POSITION = 2**63 - 1  # a log position is a BIGINT: a larger one is refused (422), never sent to SQL (500)
WaitForPosition = Annotated[str | None, Query(
    max_length=2000,
    description=f"Answer once the read models have applied this log position (the `X-Log-Position` of your "
                f"write: a number; over shards `partition:position`, several separated by commas), waiting at "
                f"most {LONGEST_WAIT:.0f} s; else 503 with Retry-After.")]


async def crm(request: Request) -> CrmApplication:
    return request.app.state.crm


def fresh(*read_models: str) -> Callable[..., ReadModelStore]:
    """A dependency: the read store as the projector left it, its freshness noted for the headers."""

    def store(request: Request, wait_for_position: WaitForPosition = None) -> ReadModelStore:
        return read_store(request, read_models, wait_for_position)

    return store


def read_store(request: Request, read_models: Sequence[str], asked: str | None) -> ReadModelStore:
    """The read store, after waiting (bounded) for log position `asked` if given; raises ReadModelStopped
    if one of `read_models` is stopped."""
    state = request.app.state
    if isinstance(state.crm, ShardedApplication):
        request.state.freshness = partitioned_read(request, read_models, asked)
        return state.store
    wanted = None if asked is None else _log_position(asked)
    try:
        found = (freshness(state.crm, state.store, read_models) if wanted is None
                 else wait_for_position(state.crm, state.store, read_models, wanted))
    except NotYetApplied as late:
        raise ApiError(503, str(late), _detail(late.found, late.wanted),
                       {"Retry-After": WAIT_RETRY_AFTER, **late.found.headers()}) from None
    except ReadModelNotBuilt as absent:  # only if its tables were dropped since the server started
        raise ApiError(503, str(absent), {"read_models": absent.names}) from None
    except ReadModelRebuilding as building:  # its tables changed: the server builds the new version online
        raise ApiError(503, str(building), building.detail(), {"Retry-After": str(building.retry_after)}) from None
    except BeyondHead as beyond:
        raise ApiError(422, str(beyond), _detail(beyond.found, beyond.wanted), beyond.found.headers()) from None
    request.state.freshness = found
    return state.store


def _log_position(asked: str) -> int:
    """One log's position: a whole number from 1 (422 otherwise, as when the parameter was an integer)."""
    if not asked.isascii() or not asked.strip().isdigit() or not 1 <= int(asked) <= LAST_POSITION:
        raise ApiError(422, f"wait_for_position must be a log position, a whole number from 1 to {LAST_POSITION} "
                       f"(the X-Log-Position of a write); got {asked[:40]!r}", {"wait_for_position": asked[:200]})
    return int(asked)


def _detail(found: Freshness, wanted: int) -> dict[str, int]:
    return {"position": found.position, "head": found.head, "wait_for_position": wanted}


def report_zone(tz: Annotated[str | None, Query(max_length=64, description=(
        "The time zone whose days, weeks, months and quarters the answer's periods are, and its times are "
        "shown in (an IANA name: Asia/Shanghai, UTC); default the installation's (CRM_TIME_ZONE)."))] = None
                ) -> tzinfo:
    """`?tz=`, else the installation's zone; 422 with a sentence for a name the zone database lacks."""
    if tz is None:
        return time_zone_from_environment()
    try:
        return zone_named(tz)
    except ValueError as error:
        raise ApiError(422, f"tz: {error}") from None


Zone = Annotated[tzinfo, Depends(report_zone)]
