"""The segments read model: customers per value tier (RFM) as of an instant, a tier's members, one customer's
segment and tier history, and movements between tiers.

Permission "segments:read": admin, analyst and sales (who sell to the tiers); not service. Tier counts and
movements are bounded (one row per tier, per pair of tiers) and not paginated; members and history are.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from domain.segmentation import MONETARY_CURRENCY, TIERS
from gateways.http.auth import allow
from gateways.http.deps import fresh
from gateways.http.error_responses import ApiError
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.responses import json_response
from gateways.http.routes.funnel_routes import property_filters
from gateways.report_tables import in_currency, segments_grouped_tables, single
from gateways.http.schemas import ERRORS, Instant
from gateways.http.record_ids import CustomerId
from projections.segments import SegmentQueries
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/segments", tags=["segments"], responses=ERRORS,
                   dependencies=[Depends(allow("segments:read"))])
Store = Annotated[ReadModelStore, Depends(fresh("segments"))]
Page = Annotated[PageParams, Depends(page_params)]
Format = Annotated[ReportFormat, Depends(report_format)]
AsOf = Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")]
Tier = Annotated[Literal[TIERS] | None, Query(description="List this tier's members.")]  # type: ignore[valid-type]


def _members(queries: SegmentQueries, tier: str, instant: datetime, total: int, params: PageParams) -> dict[str, Any]:
    """One page of the tier's members, most valuable first (paginated in SQL; `total` from the tier count)."""
    members = queries.members(tier, instant, params.limit, params.offset)
    end = params.offset + params.limit
    return {"items": [m.to_dict() for m in members], "total": total, "limit": params.limit,
            "offset": params.offset, "next_offset": end if end < total else None}


@router.get("", summary="Customers per tier as of an instant (default now); with `tier`, its members paginated", responses=CSV_ANSWER)
def tiers(store: Store, params: Page, fmt: Format, as_of: AsOf = None, tier: Tier = None,
          by: Annotated[str | None, Query(description="Tier counts per value of region, industry, channel or a "
                                          "customer property (as of the instant; unknown where none).")] = None,
          region: str | None = None, industry: str | None = None,
          channel: Annotated[str | None, Query(description="The acquisition channel.")] = None,
          prop: Annotated[list[str], Query(alias="property", max_length=50, description=(
              "name=value: only customers with this property at the instant; repeatable."))]
          = [],  # noqa: B006 - FastAPI copies a Query default
          ) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    queries = SegmentQueries(store)
    where = [(name, value) for name, value in (("region", region), ("industry", industry), ("channel", channel))
             if value is not None] + list(property_filters(prop))
    if tier is not None and (by or where):
        raise ApiError(422, "by and the filters go with the tier counts, not with tier")
    if by is not None:
        groups = queries.grouped_tier_counts(instant, by, where)
        grouped = {"as_of": instant, "by": by, "where": dict(where), "groups": [
            {"key": {by: value}, "tiers": [asdict(c) for c in counts]} for value, counts in groups.items()]}
        return report_response(fmt, grouped, lambda: segments_grouped_tables(grouped, MONETARY_CURRENCY),
                               "segments-groups")
    counts = queries.tier_counts(instant, where)
    result: dict[str, Any] = {"as_of": instant, "tiers": [asdict(count) for count in counts]}
    if tier is not None:
        total = next(count.customers for count in counts if count.tier == tier)
        result |= {"tier": tier, "members": _members(queries, tier, instant, total, params)}
    return report_response(fmt, result, lambda: {
        "tiers": in_currency(result["tiers"], MONETARY_CURRENCY),
        **({"members": in_currency(result["members"]["items"], MONETARY_CURRENCY, "monetary_cents")} if tier else {})},
        "segments")


@router.get("/customers/{customer_id}", summary="One customer's scores, tier and preferences as of an instant")
def segment_of(customer_id: CustomerId, store: Store, as_of: AsOf = None) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    segment = SegmentQueries(store).segment_of(customer_id, instant)
    if segment is None:
        raise ApiError(404, f"customer {customer_id} was in no segment as of {instant.isoformat()}")
    return json_response(segment.to_dict())


@router.get("/customers/{customer_id}/history", summary="When the customer entered and left each tier, oldest first",
            responses=CSV_ANSWER)
def history(customer_id: CustomerId, store: Store, params: Page, fmt: Format, as_of: AsOf = None) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    stays = SegmentQueries(store).history(customer_id, instant)
    if not stays:
        raise ApiError(404, f"customer {customer_id} was in no segment by {instant.isoformat()}")
    listed = page([stay.to_dict() for stay in stays], params)
    return report_response(fmt, {"customer_id": customer_id, "as_of": instant, "history": listed},
                           lambda: single("history", listed["items"]), "segment-history")


@router.get("/movements", summary="Customers per (tier at start, tier at end) who changed tier", responses=CSV_ANSWER)
def movements(store: Store, fmt: Format, start: Annotated[Instant, Query()],
              end: Annotated[Instant, Query()]) -> Response:
    if end <= start:
        raise ApiError(422, "end must come after start")
    moves = SegmentQueries(store).movements(start, end)
    rows = [asdict(move) for move in moves]
    return report_response(fmt, {"start": start, "end": end, "movements": rows}, lambda: single("movements", rows),
                           "segment-movements")
