"""An inbound message becomes the same typed command the HTTP API and the CLI send."""

from __future__ import annotations

from uuid import UUID

import orjson
import pytest

from domain.errors import DomainError
from gateways.kafka.inbound import command_of, handle, parse
from services.application import CrmApplication
from services.commands import LaunchCampaign, LogTouch, PlanCampaign, RecordResponse, RegisterCustomer
from services.commands.ab_tests import DefineVariants
from services.settings import database_from_url
from tests.conftest import at

CUSTOMER = UUID("0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e01")
CAMPAIGN = UUID("0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e02")


def test_a_touch_message_is_a_log_touch_command() -> None:
    message = parse(orjson.dumps({"type": "touch", "source": "call-center", "customer_id": str(CUSTOMER),
                                  "channel": "phone", "direction": "inbound", "summary": " 回访 "}))

    assert command_of(message) == LogTouch(CUSTOMER, "phone", "inbound", "回访")


def test_a_touch_message_may_leave_its_channel_out() -> None:
    message = parse(orjson.dumps({"type": "touch", "source": "call-center", "customer_id": str(CUSTOMER),
                                  "direction": "outbound"}))

    assert command_of(message) == LogTouch(CUSTOMER, "unknown", "outbound", "")


def test_a_campaign_response_message_is_a_record_response_command() -> None:
    message = parse(orjson.dumps({"type": "campaign_response", "source": "ads", "campaign_id": str(CAMPAIGN),
                                  "kind": "click", "customer_id": str(CUSTOMER)}))

    assert command_of(message) == RecordResponse(CAMPAIGN, "click", customer_id=CUSTOMER)


def test_a_campaign_response_message_may_name_the_variant_responded_to() -> None:
    message = parse(orjson.dumps({"type": "campaign_response", "source": "ads", "campaign_id": str(CAMPAIGN),
                                  "kind": "click", "customer_id": str(CUSTOMER), "variant": "对照组B"}))

    assert command_of(message) == RecordResponse(CAMPAIGN, "click", customer_id=CUSTOMER, variant="对照组B")


def test_a_response_naming_a_variant_with_a_control_character_is_refused_and_writes_nothing() -> None:
    """Such a key cannot be defined (domain.campaign_variants), so a response naming it is dead-lettered with a
    sentence instead of reaching attribution, which once split "\\x1f" keys for the whole installation."""
    app = CrmApplication(database_from_url("memory://"))
    campaign = app.plan_campaign(PlanCampaign("展会", "event", "10000"), at(0))
    with pytest.raises(DomainError, match="control character"):
        app.define_variants(DefineVariants(campaign, [{"key": "A\x1fB", "weight": 1}, {"key": "C", "weight": 1}]),
                            at(0))
    app.define_variants(DefineVariants(campaign, [{"key": "A", "weight": 1}, {"key": "B", "weight": 1}]), at(0))
    app.launch_campaign(LaunchCampaign(campaign), at(0))
    customer = app.register_customer(RegisterCustomer("陈静"), at(1))
    written = app.event_count()
    with pytest.raises(ValueError, match="defines no variant"):
        handle(app, orjson.dumps({"type": "campaign_response", "source": "ads", "campaign_id": str(campaign),
                                  "kind": "click", "customer_id": str(customer), "variant": "A\x1fB"}), "c-1")
    assert app.event_count() == written
