"""Reminders open as of an instant (emitted by then, the item still in that stage entry then), optionally of
one owner; items by name and customer. Permission "reports:read" (admin, analyst, sales, service), like the
other reports; paginated; CSV with ?format=csv."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.deps import crm, fresh
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.schemas import ERRORS, NO_NUL, Instant
from projections.reminders import ReminderQueries
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/reminders", tags=["reminders"], responses=ERRORS,
                   dependencies=[Depends(allow("reports:read"))])
Reminders = Annotated[ReadModelStore, Depends(fresh("reminders"))]
Owner = Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="Only this owner's reminders "
                                                                             "(the owner when reminded).")]


@router.get("", summary="Reminders open as of an instant (default now), earliest due first (paginated)",
            responses=CSV_ANSWER)
def open_reminders(store: Reminders, app: Annotated[CrmApplication, Depends(crm)],
                   params: Annotated[PageParams, Depends(page_params)],
                   fmt: Annotated[ReportFormat, Depends(report_format)],
                   as_of: Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")] = None,
                   owner: Owner = None) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    found = [r.to_dict() for r in ReminderQueries(store, app.keys.unseal_all_marks).open_at(instant, owner)]
    paged = page(found, params)
    data = {"as_of": instant.isoformat(), "owner": owner, "reminders": paged}
    return report_response(fmt, data, lambda: {"reminders": paged["items"]}, "reminders")
