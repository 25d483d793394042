"""The timeline read model: everything that happened to a customer (and the leads it came from), in business
time order, as of an instant.

Permission "timeline:read": admin, analyst, sales and service — everyone who talks to customers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.deps import crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.pagination import PageParams, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.report_tables import single
from gateways.http.schemas import ERRORS, Instant
from projections.timeline import TimelineQueries, UnknownCustomer
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/customers", tags=["timeline"], responses=ERRORS,
                   dependencies=[Depends(allow("timeline:read"))])


@router.get("/{customer_id}/timeline", summary="The customer's timeline as of an instant (default now), "
                                               "oldest first, paginated", responses=CSV_ANSWER)
def timeline(customer_id: UUID, store: Annotated[ReadModelStore, Depends(fresh("timeline"))],
             app: Annotated[CrmApplication, Depends(crm)],
             params: Annotated[PageParams, Depends(page_params)],
             fmt: Annotated[ReportFormat, Depends(report_format)],
             as_of: Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")] = None,
             ) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    try:
        found = TimelineQueries(store, app.keys.unseal_marks).timeline(customer_id, instant, params.limit,
                                                                       params.offset)
    except UnknownCustomer as unknown:
        raise ApiError(404, str(unknown)) from unknown
    end = params.offset + params.limit
    items = [e.to_dict() for e in found.entries]
    return report_response(fmt, {"customer_id": customer_id, "as_of": instant, "items": items,
                                  "total": found.total, "limit": params.limit, "offset": params.offset,
                                  "next_offset": end if end < found.total else None},
                           lambda: single("entries", items), "timeline")
