"""`GET /metrics`: Prometheus's text exposition of services.metrics, for a token whose role grants metrics:read.

Not public like /health: the command counts by type are the business's activity (deals won and lost per
minute, leads captured), which a stranger should not read. Prometheus sends a bearer token natively
(`authorization: {credentials_file: …}` in its scrape config); the `monitor` role grants this and nothing
else, so the scraper's token opens no customer data. Computed in a worker thread: the lag gauges query
the database.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.schemas import ERRORS
from services.metrics import MetricsRegistry

router = APIRouter(tags=["metrics"], responses=ERRORS)


@router.get("/metrics", summary="Prometheus metrics: command latency, requests, projection/relay/consumer lag, "
                                "rebuild progress (text exposition format)",
            dependencies=[Depends(allow("metrics:read"))], response_class=Response)
def metrics(request: Request) -> Response:
    registry: MetricsRegistry = request.app.state.metrics
    body, content_type = registry.exposition()
    return Response(body, media_type=content_type)
