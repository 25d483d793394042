"""Liveness and the read models' state: the one route that needs no token.

Each read model's position, the log's head, the lag between them and, if it is stopped at an event it
cannot apply, the failure (log position, aggregate, event type, reason). 503 while one is stopped, so a
load balancer or monitor sees the wedge; the API itself still answers everything else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateways.http.responses import OrjsonResponse
from services.projection_runtime.projector import read_statuses
from services.projection_runtime.registry import READ_MODELS

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the API up, and is every read model running? (no token needed)")
def health(request: Request) -> OrjsonResponse:
    state = request.app.state
    models: dict[str, Any] = {
        model.name: {"position": model.position, "head": model.head, "lag": model.lag,
                     "failure": model.failure.message() if model.failure else None}
        for model in read_statuses(state.crm, state.store, list(READ_MODELS))
    }
    stopped = [name for name, model in models.items() if model["failure"]]
    return OrjsonResponse({"status": "stopped read models: " + ", ".join(stopped) if stopped else "ok",
                           "read_models": models}, status_code=503 if stopped else 200)
