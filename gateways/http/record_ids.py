"""Which record a path names: `/deals/{deal_id}` takes the deal's UUID, its external id `source:id`
("salesforce:006Dn00000AbCdE"), or the bare id ("006Dn00000AbCdE") when one deal has it.

One dependency per kind of record (`DealId`, …), declared where a route names its path parameter: a UUID is
used as it is (no query, as before); any other text is resolved through the external ids read model
(`projections.external_ids`). Unknown → 404; a bare id several records have → 409 listing them (the client
must say which: its question has more than one answer, as with a conflicting write).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path, Request

from gateways.http.error_responses import ApiError
from projections.external_ids import AmbiguousId, ExternalIdQueries, UnknownId
from projections.external_ids.queries import as_uuid

DESCRIPTION = "The record's id: its UUID, its external id `source:id`, or the bare id when it is unique."


def record_id(kind: str, parameter: str) -> Callable[..., UUID]:
    """A dependency: the id of the `kind` record that path parameter `parameter` names."""

    def resolve(request: Request, text: str) -> UUID:
        return resolve_text(request, kind, text)

    # Evaluated here, not as a string later (this module's annotations are postponed): the path parameter's
    # name is the factory's argument.
    resolve.__annotations__.update(request=Request, text=Annotated[str, Path(
        alias=parameter, min_length=1, max_length=250, description=DESCRIPTION)])
    return resolve


def resolve_text(request: Request, kind: str, text: str) -> UUID:
    """The id of the `kind` record `text` names (ApiError 404 / 409 otherwise)."""
    uuid = as_uuid(text)
    if uuid is not None:
        return uuid
    try:
        return ExternalIdQueries(request.app.state.store).resolve(kind, text)
    except UnknownId as unknown:
        raise ApiError(404, str(unknown)) from None
    except AmbiguousId as ambiguous:
        raise ApiError(409, str(ambiguous), {"candidates": [c.to_dict() for c in ambiguous.candidates]}) from None


CustomerId = Annotated[UUID, Depends(record_id("customer", "customer_id"))]
LeadId = Annotated[UUID, Depends(record_id("lead", "lead_id"))]
DealId = Annotated[UUID, Depends(record_id("deal", "deal_id"))]
TicketId = Annotated[UUID, Depends(record_id("ticket", "ticket_id"))]
CampaignId = Annotated[UUID, Depends(record_id("campaign", "campaign_id"))]
