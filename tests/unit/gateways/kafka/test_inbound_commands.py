"""An inbound message becomes the same typed command the HTTP API and the CLI send."""

from __future__ import annotations

from uuid import UUID

import orjson

from gateways.kafka.inbound import command_of, parse
from services.commands import LogTouch, RecordResponse

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
