"""A campaign's A/B test (issue 16): define its variants, record exposures, stop a variant, declare a winner;
and each variant's funnel with the significance of each comparison, as of an instant.

GET /campaigns/{id}/variants answers from the variants read model (freshness headers, never catching up):
`?as_of=` (default now), `?step=` (the funnel step whose rate over exposures is compared: responses by
default, leads, qualified, customers or won), `?baseline=` (the variant the others are compared with:
default the first defined, the control), money at the rates in force at the instant; `?format=csv` gives
its `variants` table (or `?table=comparisons`, `unconverted`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from domain.campaign import Campaign
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.json_body import StrictJsonRoute
from gateways.http.record_ids import CampaignId
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.schemas import ERRORS, NO_NUL, Changed, Instant, body_of
from gateways.report_tables import variants_tables
from projections.rates import RateQueries
from projections.variants import DEFAULT_STEP, VariantQueries
from services.application import CrmApplication
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("campaigns:write"))]
Store = Annotated[ReadModelStore, Depends(fresh("variants", "rates"))]  # revenue converted at the rates at T
Format = Annotated[ReportFormat, Depends(report_format)]
Variant = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL, description='A variant\'s key, "A".')]

DefineVariantsBody = body_of(DefineVariants, "DefineVariants")
RecordExposuresBody = body_of(RecordExposures, "RecordExposures", from_url=("variant",))
StopVariantBody = body_of(StopVariant, "StopVariant", from_url=("variant",))
DeclareWinnerBody = body_of(DeclareWinner, "DeclareWinner", from_url=("variant",))


@router.put("/{campaign_id}/variants", response_model=Changed,
            summary="Define the campaign's variants (control first): key, name, copy, channel, landing page, offer "
                    "and split weight; a redefinition keeps every key")
def define_variants(campaign_id: CampaignId, body: DefineVariantsBody, cmd: Write) -> Response:
    return cmd.changed(DefineVariants, body, campaign_id=campaign_id)


@router.post("/{campaign_id}/variants/{variant}/exposures", response_model=Changed,
             summary="Record how many more of a variant were sent or shown")
def record_exposures(campaign_id: CampaignId, variant: Variant, body: RecordExposuresBody, cmd: Write) -> Response:
    return cmd.changed(RecordExposures, body, campaign_id=campaign_id, variant=variant)


@router.post("/{campaign_id}/variants/{variant}/stop", response_model=Changed,
             summary="Stop a variant: it takes no more exposures, responses or leads")
def stop_variant(campaign_id: CampaignId, variant: Variant, body: StopVariantBody, cmd: Write) -> Response:
    return cmd.changed(StopVariant, body, campaign_id=campaign_id, variant=variant)


@router.post("/{campaign_id}/variants/{variant}/winner", response_model=Changed,
             summary="Declare a variant the winner of the campaign's test")
def declare_winner(campaign_id: CampaignId, variant: Variant, body: DeclareWinnerBody, cmd: Write) -> Response:
    return cmd.changed(DeclareWinner, body, campaign_id=campaign_id, variant=variant)


@router.get("/{campaign_id}/variants", dependencies=[Depends(allow("campaigns:read"))], responses=CSV_ANSWER,
            summary="Each variant's funnel (exposures → responses → leads → qualified → customers → won, revenue) "
                    "and each comparison's significance and verdict, as of an instant (default now)")
def variants_report(campaign_id: CampaignId, store: Store, app: Annotated[CrmApplication, Depends(crm)],
                    fmt: Format, as_of: Annotated[Instant | None, Query(description="ISO 8601 with a zone.")] = None,
                    step: Annotated[str, Query(max_length=20, description="responses (default), leads, qualified, "
                                                                          "customers or won.")] = DEFAULT_STEP,
                    baseline: Annotated[str | None, Query(max_length=200, pattern=NO_NUL,
                                                          description="The variant compared with (default the "
                                                                      "first defined).")] = None) -> Response:
    app.get(Campaign, campaign_id)  # 404 for no such campaign
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    try:
        report = VariantQueries(store).report(str(campaign_id), instant, step, baseline, money).to_dict()
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return report_response(fmt, report, lambda: variants_tables(report), "variants")
