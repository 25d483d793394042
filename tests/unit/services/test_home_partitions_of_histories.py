"""Property: in any random history (`tests.support.equivalence`), every record of one customer — the customer,
the leads converted into it, its deals, its tickets and every response on their streams — shares one home
partition (`domain.partitions`), so one shard and one Kafka partition hold all of it, in order."""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from uuid import UUID

from hypothesis import HealthCheck, given, settings

from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.partitions import partition_of
from domain.ticket import Ticket
from services.application import CrmApplication
from services.settings import database_from_url
from tests.support.equivalence import apply_history, operations


def _records_by_customer(app: CrmApplication) -> dict[UUID, set[UUID]]:
    """Each customer → the ids of the streams that hold its records' events (responses: their respondent's)."""
    records: dict[UUID, set[UUID]] = defaultdict(set)
    for _, event in app.read_log():
        if isinstance(event, Customer.Registered):
            records[event.originator_id].add(event.originator_id)
        elif isinstance(event, (Lead.Converted, Deal.Opened, Ticket.Opened)):
            records[event.customer_id].add(event.originator_id)
    return records


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_every_record_of_one_customer_shares_its_home_partition(ops: list) -> None:
    with closing(CrmApplication(database_from_url("memory://"))) as app:
        app.ensure_default_pipelines()
        apply_history(app, ops, on_sync=lambda: None)
        for customer, records in _records_by_customer(app).items():
            assert {partition_of(record) for record in records} == {partition_of(customer)}, customer
        events = [event for _, event in app.read_log()]
        respondents = {e.originator_id for e in events if isinstance(e, (Lead.Captured, Customer.Registered))}
        responses = {e.originator_id for e in events
                     if isinstance(e, (Lead.RespondedToCampaign, Customer.RespondedToCampaign))}
        assert responses <= respondents  # on the respondent's stream, never the campaign's
