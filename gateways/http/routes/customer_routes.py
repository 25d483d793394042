"""Customers: register, contact details, touches, tags, consent, forget; read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from domain.customer import Customer
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, CommandBody, Created, body_of
from gateways.http.serializers import customer_view
from gateways.http.record_ids import CustomerId
from services.application import CrmApplication
from services.commands import (AddTag, ChangeConsent, ChangeContactDetails, ForgetCustomer, LogTouch, RegisterCustomer,
                               RemoveTag)

router = APIRouter(prefix="/customers", tags=["customers"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("customers:write"))]


RegisterCustomerBody = body_of(RegisterCustomer, "RegisterCustomer")
ContactDetailsBody = body_of(ChangeContactDetails, "ContactDetails", versioned=True)
TouchBody = body_of(LogTouch, "Touch")
TagBody = body_of(AddTag, "TagBody")  # also the body of RemoveTag, which has the same fields
ConsentBody = body_of(ChangeConsent, "Consent")


@router.post("", status_code=201, response_model=Created, summary="Register a customer")
def register(body: RegisterCustomerBody, cmd: Write) -> Response:
    return cmd.created(RegisterCustomer, body, "customers")


@router.get("/{customer_id}", summary="A customer's current state (ETag: its version)",
            dependencies=[Depends(allow("customers:read"))])
def get_customer(customer_id: CustomerId, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    customer = app.get(Customer, customer_id)
    return json_response(customer_view(customer), version=customer.version)


@router.put("/{customer_id}/contact-details", response_model=Changed, summary="Change email and phone")
def change_contact_details(customer_id: CustomerId, body: ContactDetailsBody,
                           cmd: Annotated[CommandContext, Depends(command("customers:write"))]) -> Response:
    return cmd.changed(ChangeContactDetails, body, customer_id=customer_id)


@router.post("/{customer_id}/touches", response_model=Changed, summary="Log a touch (call, visit, email…)")
def log_touch(customer_id: CustomerId, body: TouchBody,
              cmd: Annotated[CommandContext, Depends(command("customer_touches:write"))]) -> Response:
    return cmd.changed(LogTouch, body, customer_id=customer_id)


@router.post("/{customer_id}/tags", response_model=Changed, summary="Add a tag")
def add_tag(customer_id: CustomerId, body: TagBody, cmd: Write) -> Response:
    return cmd.changed(AddTag, body, customer_id=customer_id)


@router.post("/{customer_id}/tags/removals", response_model=Changed, summary="Remove a tag (named in the body)")
def remove_tag_named_in_body(customer_id: CustomerId, body: TagBody, cmd: Write) -> Response:
    """A tag is personal data: in the body it stays out of URLs, and so out of access logs and proxies."""
    return cmd.changed(RemoveTag, body, customer_id=customer_id)


@router.delete("/{customer_id}/tags/{tag}", response_model=Changed, deprecated=True,
               summary="Remove a tag (deprecated: the tag, personal data, ends up in access logs; use POST "
                       "/customers/{customer_id}/tags/removals)")
def remove_tag(customer_id: CustomerId, tag: Annotated[str, Path(min_length=1, max_length=64)], cmd: Write,
               body: CommandBody | None = None) -> Response:
    return cmd.changed(RemoveTag, body or CommandBody(), customer_id=customer_id, tag=tag)


@router.put("/{customer_id}/consent", response_model=Changed, summary="Give or withdraw marketing consent")
def change_consent(customer_id: CustomerId, body: ConsentBody, cmd: Write) -> Response:
    return cmd.changed(ChangeConsent, body, customer_id=customer_id)


@router.post("/{customer_id}/forget", response_model=Changed, summary="Erase personal data (irreversible)")
def forget(customer_id: CustomerId, cmd: Write, body: CommandBody | None = None) -> Response:
    return cmd.changed(ForgetCustomer, body or CommandBody(), customer_id=customer_id)
