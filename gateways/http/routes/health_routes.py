"""Liveness and readiness: the routes that need no token (a load balancer or orchestrator probes them).

`GET /health` is readiness: each read model's position, the log's head, the lag between them and, if it is
stopped at an event it cannot apply, the failure (log position, aggregate, event type, reason). 503 while one
is stopped or lags more than CRM_READY_MAX_LAG events (services.projection_runtime.readiness), with each
reason under `not_ready`, so that a load balancer sends queries elsewhere and an operator sees why; the API
itself still answers everything else. Over shards (`max_lag` null) only stopped read models count: the
read models are fed per partition there, and one position's lag behind the shards' heads means nothing. `GET /health/live` is liveness: 200 while the process answers at all,
without touching the database — restarting a server cures neither a stopped read model nor a lag, so a
liveness probe must not see them.

A read model being rebuilt because its tables changed (`crm serve` builds it online: schema_change) is listed
under `rebuilding` with its build's progress and does not count against readiness: its own queries answer 503
meanwhile, and its position (the old version's, fed by nobody) lags more every second — judged, it would take
every server sharing the database out of the load balancer, commands included, for the whole build.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateways.http.responses import OrjsonResponse
from services.projection_runtime.projector import read_statuses
from services.projection_runtime.readiness import Readiness
from services.projection_runtime.registry import READ_MODELS
from services.projection_runtime.schema_change import rebuilding

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the API ready: every read model running and within the lag allowed? "
                               "(no token needed)")
def health(request: Request) -> OrjsonResponse:
    state = request.app.state
    statuses = read_statuses(state.crm, state.store, list(READ_MODELS))
    building = rebuilding(state.store, list(READ_MODELS))
    readiness = Readiness([status for status in statuses if status.name not in building], state.ready_max_lag)
    models: dict[str, Any] = {
        model.name: {"position": model.position, "head": model.head, "lag": model.lag,
                     "failure": model.failure.message() if model.failure else None}
        for model in statuses
    }
    reasons = readiness.reasons
    projector = getattr(state, "projector", None)  # this server's follower refused to feed (consumers feed)?
    return OrjsonResponse({"status": "not ready: " + ", ".join(reasons) if reasons else "ok",
                           "read_models": models, "max_lag": readiness.max_lag, "not_ready": reasons,
                           "projector_refused": projector.refused if projector else None,
                           "rebuilding": {name: {"applied": applied, "head": statuses[0].head}
                                          for name, applied in building.items()}},
                          status_code=503 if reasons else 200)


@router.get("/health/live", summary="Is the process answering? (no token, no database)")
async def live() -> OrjsonResponse:
    return OrjsonResponse({"status": "alive"})
