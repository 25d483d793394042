"""Reports of the tickets and campaigns read models as of an instant: service (backlog, SLA, CSAT, service
funnel), campaigns and channels (ROI, CAC, attribution), and customers' lifetime values.

Permission "reports:read", one area for both reports to keep roles simple: admin, analyst, sales (for the
campaigns report) and service (for the tickets report); each of them may read the other report too.
The long lists are paginated: SLA breaches, campaigns and customer values; per-channel and attribution
rows are returned whole.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from domain.errors import DomainError
from domain.vocabulary import ACQUISITION_CHANNEL, require_recorded
from gateways.http.auth import allow
from gateways.http.deps import crm, fresh
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.routes.funnel_routes import property_filters
from gateways.report_tables import campaigns_grouped_tables, campaigns_tables, single, tickets_grouped_tables, tickets_tables
from gateways.http.schemas import ERRORS, NO_NUL, Instant
from projections.campaigns import CampaignQueries
from projections.rates import RateQueries
from projections.tickets import BreachPage, TicketQueries
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERRORS,
                   dependencies=[Depends(allow("reports:read"))])
Tickets = Annotated[ReadModelStore, Depends(fresh("tickets"))]
Campaigns = Annotated[ReadModelStore, Depends(fresh("campaigns", "rates"))]  # money converted at the rates at T
Page = Annotated[PageParams, Depends(page_params)]
Format = Annotated[ReportFormat, Depends(report_format)]
AsOf = Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")]
Channel = Annotated[str | None, Query(max_length=200, pattern=NO_NUL,
                                      description="Only this acquisition channel's campaigns and customers (a "
                                                  "value of the installation's vocabulary, or unknown).")]

TicketAxis = Annotated[str | None, Query(max_length=40, description=(
    "One report per value of owner (the assignee then), priority, region, industry, channel (the customer's) "
    "or a property of the customer (as of the instant; none: null)."))]
CampaignAxis = Annotated[str | None, Query(max_length=40, description=(
    "One report per value of region, industry (the lead's as captured) or a lead property as of the instant "
    "(unknown: none); a deal follows its lead, else its customer. Each group's cost, ROI and CAC are null "
    "with a note: costs are recorded per campaign. Not with channel."))]
LeadPropertyFilters = Annotated[list[str], Query(alias="property", max_length=50, description=(
    "name=value: only the leads with this property at the instant, their deals and responses (cost, ROI and CAC "
    "null); repeatable; not with by."))]
PropertyFilters = Annotated[list[str], Query(alias="property", max_length=50, description=(
    "name=value: only tickets whose customer has this property at the instant; repeatable."))]


@router.get("/tickets", summary="Backlog, response and resolution times, SLA breaches (paginated), CSAT and "
                                "the service funnel as of an instant (default now)", responses=CSV_ANSWER)
def tickets(store: Tickets, app: Annotated[CrmApplication, Depends(crm)], params: Page, fmt: Format,
            as_of: AsOf = None, by: TicketAxis = None, prop: PropertyFilters = []) -> Response:  # noqa: B006
    queries, instant = TicketQueries(store, app.keys.unseal_all_marks), as_of or datetime.now(timezone.utc)
    properties = property_filters(prop)
    if by is not None:
        grouped = queries.grouped(instant, by, properties).to_dict()
        listed = {**grouped, "groups": [_paged(group, params)[1] for group in grouped["groups"]]}
        grouped["groups"] = [_paged(group, params)[0] for group in grouped["groups"]]
        return report_response(fmt, grouped, lambda: tickets_grouped_tables(listed), "tickets")
    report = queries.report(instant, properties, BreachPage(params.offset, params.limit)).to_dict()
    report, listed = _paged(report, params, queried=True)
    return report_response(fmt, report, lambda: tickets_tables(listed), "tickets")


def _paged(report: dict, params: PageParams, queried: bool = False) -> tuple[dict, dict]:
    """The report with a page of its breaching tickets (JSON), and with that page's items and their total (CSV);
    `queried`: the query listed only that page already (the plain report: it pages in SQL)."""
    sla = dict(report["sla"])
    total = sla.pop("breaching_total")
    items = sla["breaching"] if queried else sla["breaching"][params.offset:params.offset + params.limit]
    end = params.offset + params.limit
    paged = {"items": items, "total": total, "limit": params.limit, "offset": params.offset,
             "next_offset": end if end < total else None}
    return ({**report, "sla": {**sla, "breaching": paged}},
            {**report, "sla": {**sla, "breaching": items, "breaching_total": total}})


@router.get("/campaigns", summary="Campaigns (paginated) and channels as of an instant (default now): ROI, CAC, "
                                  "attribution and lifetime value", responses=CSV_ANSWER)
def campaigns(store: Campaigns, app: Annotated[CrmApplication, Depends(crm)], params: Page, fmt: Format,
              as_of: AsOf = None, channel: Channel = None, by: CampaignAxis = None,
              prop: LeadPropertyFilters = []) -> Response:  # noqa: B006
    if channel is not None:
        require_recorded(ACQUISITION_CHANNEL, app.vocabulary(ACQUISITION_CHANNEL), channel)
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    where = property_filters(prop)
    if (by is not None or where) and channel is not None:
        raise DomainError("by and property give every channel; leave out channel")
    if by is not None and where:
        raise DomainError("by gives every value; leave out property")
    if where:
        filtered = CampaignQueries(store).filtered(instant, where, money)
        return report_response(fmt, filtered, lambda: campaigns_tables(filtered), "campaigns")
    if by is not None:
        grouped = CampaignQueries(store).grouped(instant, by, money).to_dict()
        listed = dict(grouped)
        grouped["groups"] = [{**g, "campaigns": page(g["campaigns"], params)} for g in listed["groups"]]
        listed["groups"] = [{**g, "campaigns": g["campaigns"]["items"]} for g in grouped["groups"]]
        return report_response(fmt, grouped, lambda: campaigns_grouped_tables(listed), "campaigns")
    report = CampaignQueries(store).report(instant, channel, money).to_dict()
    report["campaigns"] = page(report["campaigns"], params)
    return report_response(fmt, report, lambda: campaigns_tables({**report, "campaigns": report["campaigns"]["items"]}),
                           "campaigns")


@router.get("/customer-values", summary="Lifetime value of every customer with a won deal, highest first",
            responses=CSV_ANSWER)
def customer_values(store: Campaigns, app: Annotated[CrmApplication, Depends(crm)], params: Page, fmt: Format,
                    as_of: AsOf = None) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    values, unconverted = CampaignQueries(store).customer_values_and_unconverted(instant, money)
    ranked = sorted(values.items(), key=lambda item: (-item[1], str(item[0])))
    customers = page([{"customer_id": customer_id, "currency": money.reporting, "value_cents": cents,
                       "unconverted": unconverted.get(customer_id, {})} for customer_id, cents in ranked], params)
    return report_response(fmt, {"as_of": instant, "customers": customers},
                           lambda: single("customers", customers["items"]), "customer-values")
