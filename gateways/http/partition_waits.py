"""`?wait_for_position=` and the freshness headers of a query over shards (services.projection_runtime.
partition_freshness says why positions are per partition there).

Over shards a change answers `X-Log-Position: <partition>:<position>`; a query takes one or several of them
(`?wait_for_position=17:1042,3:88`), waits (bounded) until every read model it reads has applied each, and
answers `X-Read-Model-Position` for the partitions asked and, when the partitions' ends are known (the
app's `partition_heads`, e.g. a consumer's Kafka end offsets), `X-Read-Model-Lag`: the most events any of
its read models has still to apply in any partition. A bad value is a 400 with a sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import Request

from gateways.http.error_responses import ApiError
from services.projection_runtime.freshness import ReadModelNotBuilt
from services.projection_runtime.partition_freshness import (BadPartitionPosition, BeyondShardHead,
                                                             NotYetAppliedInPartitions, PartitionFreshness,
                                                             format_positions, parse_positions,
                                                             partition_freshness, wait_for_partitions)
from services.sharding.router import ShardedApplication

WAIT_RETRY_AFTER = "1"  # seconds, as for one log
log = logging.getLogger(__name__)


def partitioned_read(request: Request, read_models: Sequence[str], wanted: str | None) -> PartitionFreshness:
    """The freshness of a query over shards, after waiting for `wanted` (`p:n[,p:n…]`) if given."""
    state = request.app.state
    crm: ShardedApplication = state.crm
    heads = _heads(state)
    try:
        if wanted is None:
            return partition_freshness(state.store, read_models, heads=heads)
        positions = parse_positions(wanted)
        return wait_for_partitions(state.store, read_models, positions, lambda p: crm.apps[crm.shard_of(p)]
                                   .event_count(), heads)
    except BadPartitionPosition as bad:
        raise ApiError(400, str(bad), {"wait_for_position": wanted[:200] if wanted else wanted}) from None
    except NotYetAppliedInPartitions as late:
        raise ApiError(503, str(late), _detail(late.found, late.wanted),
                       {"Retry-After": WAIT_RETRY_AFTER, **late.found.headers()}) from None
    except BeyondShardHead as beyond:
        raise ApiError(422, str(beyond), {"partition": beyond.wanted.partition, "head": beyond.head,
                                          "wait_for_position": str(beyond.wanted)}) from None
    except ReadModelNotBuilt as absent:
        raise ApiError(503, str(absent), {"read_models": absent.names}) from None


def _heads(state: Any) -> Mapping[int, int] | None:
    """The partitions' end offsets if the app was given a way to know them; unknown (no lag header) when it
    fails: a broker away must not fail the queries, which read only PostgreSQL."""
    provider: Callable[[], Mapping[int, int] | None] | None = getattr(state, "partition_heads", None)
    if provider is None:
        return None
    try:
        return provider()
    except Exception as error:  # noqa: BLE001 - any failure of the provider only hides the lag
        log.warning("partition ends unknown (%s): answering without X-Read-Model-Lag", error)
        return None


def _detail(found: PartitionFreshness, wanted: Sequence[Any]) -> dict[str, Any]:
    return {"applied": format_positions(found.applied), "wait_for_position": format_positions(wanted),
            "lag": found.lag}
