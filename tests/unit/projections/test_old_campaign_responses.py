"""A response is one fact however the log holds it: on the respondent's stream (`Lead.RespondedToCampaign`,
`Customer.RespondedToCampaign`) or, in a log from before home partitions, on the campaign's
(`Campaign.ResponseRecorded`). Two logs differing only so give every read model the same answers (the
timeline's entries differ only by their kind, the event type they show)."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from typing import Any
from uuid import UUID

from domain.campaign import Campaign
from services.application import CrmApplication
from services.commands import CaptureLead, LaunchCampaign, PlanCampaign, RecordResponse, RegisterCustomer
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, summaries
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at

CAMPAIGNS = [UUID(int=1 << 100 | n) for n in range(2)]
LEADS = [UUID(int=2 << 100 | n) for n in range(3)]
CUSTOMERS = [UUID(int=3 << 100 | n) for n in range(2)]
RESPONSES = [(0, "click", None, LEADS[0], 1), (0, "reply", CUSTOMERS[0], None, 1.5), (1, "registration", None,
                                                                                         LEADS[1], 2),
             (1, "click", CUSTOMERS[1], None, 2), (0, "reply", None, LEADS[0], 3)]


def _answers(old_style: bool) -> dict[str, Any]:
    with closing(CrmApplication(database_from_url("memory://"))) as crm:
        crm.ensure_default_pipelines(at(-30, "setup"))
        for number, campaign in enumerate(CAMPAIGNS):
            crm.plan_campaign(PlanCampaign(f"活动{number}", "event", "1000", id=campaign), at(0))
            crm.launch_campaign(LaunchCampaign(campaign), at(0.5))
        for number, lead in enumerate(LEADS):
            crm.capture_lead(CaptureLead(f"线索{number}", "华东", "零售", "web", campaign_id=CAMPAIGNS[number % 2],
                                         id=lead), at(0.5))
        for number, customer in enumerate(CUSTOMERS):
            crm.register_customer(RegisterCustomer(f"客户{number}", "华南", "制造业", "event", id=customer), at(0.5))
        for campaign, kind, customer, lead, day in RESPONSES:
            if old_style:
                held = crm.get(Campaign, CAMPAIGNS[campaign])
                held.record_response(kind, at(day), customer_id=customer, lead_id=lead)
                crm.save_new(held)
            else:
                crm.record_response(RecordResponse(CAMPAIGNS[campaign], kind, customer, lead), at(day))
        with closing(ReadModelStore(crm.database)) as store:
            Projector(crm, store, [model() for model in READ_MODELS.values()]).catch_up()
            answers = summaries(crm, store, T0 + timedelta(days=10))
    for entries in answers["timeline"].values():
        for entry in entries:
            entry.pop("kind")
    return answers


def test_old_and_new_responses_give_every_read_model_the_same_answers() -> None:
    new, old = _answers(old_style=False), _answers(old_style=True)
    responses = [c["totals"]["responses"] for c in new["campaigns"]["report"]["campaigns"]]
    assert [sum(counts.values()) for counts in responses] == [3, 2]  # every response counted, either way
    assert new == old
