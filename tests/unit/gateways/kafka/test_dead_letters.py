"""A dead letter keeps what an operator debugs with and none of the message's personal data."""

import orjson
import pytest

from gateways.kafka.inbound import handle, without_personal_data
from services.application import CrmApplication

CUSTOMER = "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e01"


def test_a_refused_touch_keeps_its_ids_and_vocabulary_but_not_its_summary() -> None:
    message = {"type": "touch", "source": "web-tracking", "customer_id": CUSTOMER, "channel": "fax",
               "direction": "inbound", "summary": "王先生说他住在西湖边", "occurred_at": "2026-03-05T10:00:00+08:00"}

    kept = orjson.loads(without_personal_data(orjson.dumps(message)))

    assert kept == {"type": "touch", "source": "web-tracking", "customer_id": CUSTOMER, "channel": {"removed": 3},
                    "direction": "inbound", "summary": {"removed": 10}, "occurred_at": "2026-03-05T10:00:00+08:00"}


@pytest.mark.parametrize("value", [b"{broken json from 13912345678", b'["13912345678"]', b'"13912345678"', b""])
def test_a_body_that_is_not_a_json_object_is_kept_only_as_its_length(value: bytes) -> None:
    assert orjson.loads(without_personal_data(value)) == {"removed": len(value.decode())}


def test_fields_not_in_their_expected_form_are_removed_even_when_their_name_is_kept() -> None:
    message = {"type": "王先生", "source": "王先生 的手机", "customer_id": "王先生", "lead_id": None, "extra": "x"}

    kept = orjson.loads(without_personal_data(orjson.dumps(message)))

    assert "王先生" not in orjson.dumps(kept).decode() and kept["lead_id"] is None and kept["extra"] == {"removed": 1}


def test_a_refusal_reason_never_quotes_the_refused_value(crm: CrmApplication) -> None:
    message = {"type": "touch", "source": "crm-test", "customer_id": CUSTOMER, "channel": "web",
               "direction": "inbound", "summary": "王先生的住址是西湖区某某路" * 200}

    with pytest.raises(ValueError) as refused:
        handle(crm, orjson.dumps(message), "test/0/0")

    assert "summary" in str(refused.value) and "王先生" not in str(refused.value)


def test_a_reason_does_not_echo_a_name_sent_in_the_wrong_field(crm: CrmApplication) -> None:
    message = {"type": "touch", "source": "crm-test", "customer_id": "王先生", "channel": "wang@example.com",
               "direction": "inbound"}

    with pytest.raises(ValueError) as refused:
        handle(crm, orjson.dumps(message), "test/0/0")

    assert "customer_id" in str(refused.value) and "王先生" not in str(refused.value)
    assert "wang@example.com" not in str(refused.value)
