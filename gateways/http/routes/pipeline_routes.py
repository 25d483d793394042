"""Pipelines: define one, rename a stage's label, insert a stage; read one by key, or all of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from domain.pipeline import Pipeline, pipeline_id
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, Created, body_of
from gateways.http.serializers import pipeline_view
from services.application import CrmApplication, NotFound
from services.commands import DefinePipeline, InsertStage, RenameStage, SetStageReminders
from services.pipeline_catalogue import defined_pipelines

router = APIRouter(prefix="/pipelines", tags=["pipelines"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("pipelines:write"))]
Key = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="The pipeline's key, e.g. sales.")]


DefinePipelineBody = body_of(DefinePipeline, "DefinePipeline")
RenameStageBody = body_of(RenameStage, "RenameStage", from_url=("stage",))
InsertStageBody = body_of(InsertStage, "InsertStage")
SetStageRemindersBody = body_of(SetStageReminders, "SetStageReminders", from_url=("stage",))


@router.post("", status_code=201, response_model=Created, summary="Define a new pipeline (Location: by key)")
def define(body: DefinePipelineBody, cmd: Write) -> Response:
    return cmd.created(DefinePipeline, body, "pipelines", location_id=lambda _: body.key)


@router.get("", summary="Every pipeline with its stages, exact now (also one defined a moment ago)",
            dependencies=[Depends(allow("pipelines:read"))])
def list_pipelines(request: Request, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    return json_response({"pipelines": [pipeline_view(p) for p in defined_pipelines(app, request.app.state.store)]})


@router.get("/{key}", summary="A pipeline's stages (ETag: its version)",
            dependencies=[Depends(allow("pipelines:read"))])
def get_pipeline(key: Key, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    try:
        pipeline = app.get(Pipeline, pipeline_id(key))
    except NotFound:
        raise NotFound(f"no pipeline {key!r}") from None
    return json_response(pipeline_view(pipeline), version=pipeline.version)


@router.put("/{key}/stages/{stage}/label", response_model=Changed, summary="Rename a stage (its key never changes)")
def rename_stage(key: Key, stage: Annotated[str, Path(max_length=40)], body: RenameStageBody, cmd: Write) -> Response:
    return cmd.changed(RenameStage, body, key=key, stage=stage)


@router.post("/{key}/stages", response_model=Changed, summary="Insert a new open stage")
def insert_stage(key: Key, body: InsertStageBody, cmd: Write) -> Response:
    return cmd.changed(InsertStage, body, key=key)


@router.put("/{key}/stages/{stage}/reminders", response_model=Changed,
            summary="Set a stage's dwell thresholds in days (remind_after_days; [] removes them)")
def set_stage_reminders(key: Key, stage: Annotated[str, Path(max_length=40)], body: SetStageRemindersBody,
                        cmd: Write) -> Response:
    return cmd.changed(SetStageReminders, body, key=key, stage=stage)
