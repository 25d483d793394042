"""The timeline read model: everything that happened to a customer (and the leads it came from), in business
time order, as of an instant.

Permission "timeline:read": admin, analyst, sales and service — everyone who talks to customers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.deps import crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.pagination import PageParams, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.report_tables import single
from gateways.http.schemas import ERRORS, Instant
from gateways.http.record_ids import CustomerId
from projections.external_ids import ExternalIdQueries
from projections.timeline import TimelineQueries, UnknownCustomer
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/customers", tags=["timeline"], responses=ERRORS,
                   dependencies=[Depends(allow("timeline:read"))])


@router.get("/{customer_id}/timeline", summary="The customer's timeline as of an instant (default now), "
                                               "oldest first, paginated", responses=CSV_ANSWER)
def timeline(customer_id: CustomerId, store: Annotated[ReadModelStore, Depends(fresh("timeline", "external_ids"))],
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
    known = ExternalIdQueries(store).external_ids([customer_id, *(e.subject_id for e in found.entries)])
    items = [{**e.to_dict(), "subject_external_id": known.get(e.subject_id, "")} for e in found.entries]
    return report_response(fmt, {"customer_id": customer_id, "external_id": known.get(customer_id, ""),
                                  "as_of": instant, "items": items,
                                  "total": found.total, "limit": params.limit, "offset": params.offset,
                                  "next_offset": end if end < found.total else None},
                           lambda: single("entries", items), "timeline")
