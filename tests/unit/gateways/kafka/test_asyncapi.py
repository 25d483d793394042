"""The committed AsyncAPI document matches the code, and describes every event a consumer can receive."""

from pathlib import Path

import orjson

from gateways.kafka import asyncapi
from services.commands import ChangeStage, OpenDeal, RegisterCustomer
from services.event_envelope import event_data, event_type
from tests.conftest import at
from services.application import CrmApplication

COMMITTED = Path(asyncapi.__file__).with_name("asyncapi.json")


def test_the_committed_document_is_up_to_date() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render(), (
        "run: python -m gateways.kafka.asyncapi > gateways/kafka/asyncapi.json")


def test_every_published_event_has_a_message_whose_schema_names_its_fields(crm: CrmApplication) -> None:
    deal = crm.open_deal(OpenDeal(crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), at(0)),
                                  "ERP", "1", owner="李娜"), at(1))
    crm.change_stage(ChangeStage(deal, "proposal", "报价"), at(2))
    messages = asyncapi.document()["components"]["messages"]

    for _, event in crm.read_log():
        message = messages[event_type(event).removeprefix("crm.")]
        assert message["payload"]["required"] == list(event_data(event)), event_type(event)
    assert orjson.loads(COMMITTED.read_bytes())["channels"]["events"]["address"] == "crm.events"


def test_every_personal_field_is_documented_sealed_and_published_sealed(crm: CrmApplication) -> None:
    import re

    from domain.personal_data import PERSONAL_FIELDS
    from gateways.kafka.cloudevents import encode
    from tests.support.history_of_every_event import record_every_event

    record_every_event(crm)
    document = asyncapi.document()
    pattern = re.compile(document["components"]["schemas"]["SealedPersonalData"]["pattern"])
    messages = document["components"]["messages"]
    for event_class in asyncapi.event_classes():
        properties = messages[event_class.__qualname__]["payload"]["properties"]
        sealed = {name for name, schema in properties.items() if schema == asyncapi.SEALED}
        assert sealed == set(PERSONAL_FIELDS.get(event_class, ())), event_class
    for notification in crm.recorder.select_notifications(1, 10_000):
        event = crm.mapper.to_sealed_event(notification)
        data = orjson.loads(encode(event, notification.id)[1])
        for name in PERSONAL_FIELDS.get(type(event), ()):
            assert pattern.fullmatch(data[name]), (event_type(event), name, data[name])


def test_segment_changes_have_their_channel_with_the_recorded_event_and_no_personal_field() -> None:
    document = orjson.loads(COMMITTED.read_bytes())
    channel = document["channels"]["segments"]
    assert channel["address"] == "crm.segments"
    assert channel["messages"] == {"SegmentChange.Recorded": {"$ref": "#/components/messages/SegmentChange.Recorded"}}
    payload = document["components"]["messages"]["SegmentChange.Recorded"]["payload"]
    assert payload["required"][-5:] == ["customer_id", "old_tier", "new_tier", "changed_at", "sequence"]
    assert asyncapi.SEALED not in payload["properties"].values()
    assert document["operations"]["publishSegmentChanges"]["channel"] == {"$ref": "#/channels/segments"}
