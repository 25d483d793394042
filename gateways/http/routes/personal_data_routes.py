"""Opening sealed personal data for authorised downstream services.

Kafka's `crm.events` carries every personal field sealed (`pii:v1:<record id>:<AES-GCM>`, see
`gateways/kafka/asyncapi.json`). A service allowed to see personal data sends the seals it holds here and
gets the plain text back while the person is not forgotten, "(forgotten)" once they are. The key never
leaves the CRM: a service that held keys could keep them, and forgetting would no longer reach its copies.

Permission "personal_data:open": admin and the `subscriber` role (a token for a downstream service).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateways.http.auth import allow
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Body
from gateways.http.tokens import Principal
from services.application import CrmApplication

log = logging.getLogger(__name__)
router = APIRouter(prefix="/personal-data", tags=["personal data"], responses=ERRORS, route_class=StrictJsonRoute)
SEAL = r"^pii:v1:[0-9a-f-]{36}:[A-Za-z0-9_=-]+$"  # 4,000 characters (the longest text over HTTP) of 4 bytes seal to 21,420


class Seals(Body):
    sealed: list[Annotated[str, Field(pattern=SEAL, max_length=32_000)]] = Field(
        min_length=1, max_length=1000, description="Sealed values as found in crm.events, at most 1,000.")


class Opened(BaseModel):
    plain: list[str] = Field(description='The plain text of each seal, in order; "(forgotten)" once the person '
                                         "was forgotten. Keep it no longer than you need it.")


@router.post("/open", response_model=Opened, summary="Open sealed personal data (while the person is not forgotten)")
def open_seals(body: Seals, app: Annotated[CrmApplication, Depends(crm)],
               principal: Annotated[Principal, Depends(allow("personal_data:open"))]) -> Response:
    plain = app.keys.unseal_all_marks([f"⟦{sealed}⟧" for sealed in body.sealed])
    log.info("%s opened %d sealed values", principal.name, len(plain))  # who, how many; never what
    return json_response({"plain": plain})
