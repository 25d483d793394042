"""Vocabularies: the values an installation accepts for its channels, regions, industries and loss reasons.

Read with `vocabularies:read`, changed with `vocabularies:write` (admin; sales and analysts read them, to
offer the values in forms). A kind never defined answers its defaults (`defined: false`, version 0)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from domain.vocabulary import KINDS, describe
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, body_of
from services.application import CrmApplication
from services.commands import AddVocabularyValue, RetireVocabularyValue, SetVocabulary

router = APIRouter(prefix="/vocabularies", tags=["vocabularies"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("vocabularies:write"))]
Read = [Depends(allow("vocabularies:read"))]
App = Annotated[CrmApplication, Depends(crm)]
Kind = Annotated[str, Path(pattern=f"^({'|'.join(KINDS)})$", description=f"One of: {', '.join(KINDS)}.")]

SetVocabularyBody = body_of(SetVocabulary, "SetVocabulary", versioned=True)
AddValueBody = body_of(AddVocabularyValue, "AddVocabularyValue", versioned=True)
RetireValueBody = body_of(RetireVocabularyValue, "RetireVocabularyValue", versioned=True)
# One method per path (a path with two answers OPTIONS and 405 with only its first route's), and values in
# bodies, not in paths: a value may hold "/" ("B2B/SaaS").


@router.get("", summary="Every kind's values, whether it is open, and whether it was defined here",
            dependencies=Read)
def list_vocabularies(app: App) -> Response:
    return json_response({"items": [describe(kind, app.vocabulary(kind)) for kind in KINDS]})


@router.get("/{kind}", summary="A kind's values in force and retired (ETag: its version)", dependencies=Read)
def get_vocabulary(kind: Kind, app: App) -> Response:
    view = describe(kind, app.vocabulary(kind))
    return json_response(view, version=view["version"] or None)


@router.put("/{kind}/values", response_model=Changed,
            summary="Replace a kind's values and say whether it is open (values left out are retired)")
def set_vocabulary(kind: Kind, body: SetVocabularyBody, cmd: Write) -> Response:
    return cmd.changed(SetVocabulary, body, kind=kind)


@router.post("/{kind}/additions", response_model=Changed, summary="Accept one more value")
def add_value(kind: Kind, body: AddValueBody, cmd: Write) -> Response:
    return cmd.changed(AddVocabularyValue, body, kind=kind)


@router.post("/{kind}/retirements", response_model=Changed,
             summary="New records may no longer use a value; those that have it keep it")
def retire_value(kind: Kind, body: RetireValueBody, cmd: Write) -> Response:
    return cmd.changed(RetireVocabularyValue, body, kind=kind)
