"""The relay keys a response by the customer it is about, whether it is on the respondent's stream or, in a
log before home partitions, on the campaign's (`Campaign.ResponseRecorded`): the same fact, the same key."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from domain.lead import Lead
from gateways.kafka.relay import KafkaRelay
from services.application import CrmApplication
from services.commands import LaunchCampaign, PlanCampaign, RecordResponse
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.history_of_every_event import record_every_event
from tests.unit.gateways.kafka.test_relay_position import _Producer


def test_old_and_new_responses_of_one_customer_are_keyed_by_that_customer(tmp_path: Path) -> None:
    with closing(CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))) as crm:
        record_every_event(crm)
        converted = next(e for _, e in crm.read_log() if isinstance(e, Lead.Converted))
        lead, customer = converted.originator_id, converted.customer_id
        later = crm.plan_campaign(PlanCampaign("秋季活动", "event", "1000"), at(20))
        crm.launch_campaign(LaunchCampaign(later), at(20))
        crm.record_response(RecordResponse(later, "click", lead_id=lead), at(21))  # after its conversion
        producer = _Producer()
        with closing(ReadModelStore(crm.database)) as store:
            relay = KafkaRelay(crm, store, producer)  # type: ignore[arg-type]
            while relay.run_batch():
                pass
    keys: dict[str, list[tuple[str, str]]] = {}
    for key, headers, _partition in producer.sent:
        found = dict(headers)
        keys.setdefault(found["ce_type"].decode(), []).append((found["ce_subject"].decode(), key.decode()))
    # the lead's: before its conversion its own key, after it its customer's
    assert keys["crm.Lead.RespondedToCampaign"] == [(str(lead), str(lead)), (str(lead), str(customer))]
    assert keys["crm.Customer.RespondedToCampaign"] == [(str(customer), str(customer))]
    # on the campaign's stream, naming customer and lead: reference data, so sent to every partition (the
    # read models pass a campaign's versions by in order), each copy keyed by the customer
    assert {old_key for _, old_key in keys["crm.Campaign.ResponseRecorded"]} == {str(customer)}
