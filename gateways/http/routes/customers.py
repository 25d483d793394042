"""Customers: register, contact details, touches, tags, consent, forget; read one."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import StrictBool

from domain.customer import Customer
from domain.vocabulary import ACQUISITION_CHANNELS, TOUCH_CHANNELS, TOUCH_DIRECTIONS
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import (
    ERRORS,
    Changed,
    CommandBody,
    Created,
    Email,
    Label,
    Name,
    Phone,
    Tag,
    Text,
    VersionedBody,
)
from gateways.http.serializers import customer_view
from services.application import CrmApplication

router = APIRouter(prefix="/customers", tags=["customers"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("customers:write"))]


class RegisterCustomer(CommandBody):
    name: Name
    company: Label = ""
    region: Name
    industry: Name
    channel: Literal[ACQUISITION_CHANNELS]  # type: ignore[valid-type]
    email: Email = ""
    phone: Phone = ""
    campaign_id: UUID | None = None


class ContactDetails(VersionedBody):
    email: Email
    phone: Phone


class Touch(CommandBody):
    channel: Literal[TOUCH_CHANNELS]  # type: ignore[valid-type]
    direction: Literal[TOUCH_DIRECTIONS]  # type: ignore[valid-type]
    summary: Text


class TagBody(CommandBody):
    tag: Tag


class Consent(CommandBody):
    marketing: StrictBool


@router.post("", status_code=201, response_model=Created, summary="Register a customer")
def register(body: RegisterCustomer, cmd: Write) -> Response:
    return cmd.created(body, "customers", lambda meta: cmd.crm.register_customer(
        body.name, body.company, body.region, body.industry, body.channel, meta,
        email=body.email, phone=body.phone, campaign_id=body.campaign_id))


@router.get("/{customer_id}", summary="A customer's current state (ETag: its version)",
            dependencies=[Depends(allow("customers:read"))])
def get_customer(customer_id: UUID, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    customer = app.get(Customer, customer_id)
    return json_response(customer_view(customer), version=customer.version)


@router.put("/{customer_id}/contact-details", response_model=Changed, summary="Change email and phone")
def change_contact_details(customer_id: UUID, body: ContactDetails,
                           cmd: Annotated[CommandContext, Depends(command("customers:write"))]
                           ) -> Response:
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.change_contact_details(
        customer_id, body.email, body.phone, meta, expected_version=expected))


@router.post("/{customer_id}/touches", response_model=Changed, summary="Log a touch (call, visit, email…)")
def log_touch(customer_id: UUID, body: Touch,
              cmd: Annotated[CommandContext, Depends(command("customer_touches:write"))]) -> Response:
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.log_touch(
        customer_id, body.channel, body.direction, body.summary, meta, expected_version=expected))


@router.post("/{customer_id}/tags", response_model=Changed, summary="Add a tag")
def add_tag(customer_id: UUID, body: TagBody, cmd: Write) -> Response:
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.add_tag(
        customer_id, body.tag, meta, expected_version=expected))


@router.post("/{customer_id}/tags/removals", response_model=Changed, summary="Remove a tag (named in the body)")
def remove_tag_named_in_body(customer_id: UUID, body: TagBody, cmd: Write) -> Response:
    """A tag is personal data: in the body it stays out of URLs, and so out of access logs and proxies."""
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.remove_tag(
        customer_id, body.tag, meta, expected_version=expected))


@router.delete("/{customer_id}/tags/{tag}", response_model=Changed, deprecated=True,
               summary="Remove a tag (deprecated: the tag, personal data, ends up in access logs; use POST "
                       "/customers/{customer_id}/tags/removals)")
def remove_tag(customer_id: UUID, tag: Annotated[str, Path(min_length=1, max_length=64)], cmd: Write,
               body: CommandBody | None = None) -> Response:
    body = body or CommandBody()
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.remove_tag(
        customer_id, tag, meta, expected_version=expected))


@router.put("/{customer_id}/consent", response_model=Changed, summary="Give or withdraw marketing consent")
def change_consent(customer_id: UUID, body: Consent, cmd: Write) -> Response:
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.change_consent(
        customer_id, body.marketing, meta, expected_version=expected))


@router.post("/{customer_id}/forget", response_model=Changed, summary="Erase personal data (irreversible)")
def forget(customer_id: UUID, cmd: Write, body: CommandBody | None = None) -> Response:
    body = body or CommandBody()
    return cmd.changed(body, customer_id, lambda meta, expected: cmd.crm.forget_customer(
        customer_id, meta, expected_version=expected))
