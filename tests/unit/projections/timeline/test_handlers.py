"""The timeline's write side: one entry per event, whichever stream holds it."""

from __future__ import annotations

from contextlib import closing
from uuid import UUID

from domain.campaign import Campaign
from services.application import CrmApplication
from services.commands import CaptureLead, LaunchCampaign, PlanCampaign, RecordResponse
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at


def test_a_response_on_the_leads_stream_never_replaces_an_older_one_on_the_campaigns() -> None:
    """A log from before home partitions holds a response on the campaign's stream (its version 3); later
    responses are on the lead's, the second one its version 3 too, with the campaign as subject (review
    finding, issue 13: keyed by subject and version, the later entry replaced the older)."""
    campaign, lead = UUID(int=1 << 100 | 1), UUID(int=2 << 100 | 1)
    with closing(CrmApplication(database_from_url("memory://"))) as crm:
        crm.ensure_default_pipelines(at(-30, "setup"))
        crm.plan_campaign(PlanCampaign("秋季展会", "event", "1000", id=campaign), at(0))
        crm.launch_campaign(LaunchCampaign(campaign), at(0.5))
        crm.capture_lead(CaptureLead("王五", "华东", "零售", "web", campaign_id=campaign, id=lead), at(0.5))
        old_style = crm.get(Campaign, campaign)
        old_style.record_response("click", at(1), lead_id=lead)  # as the code before home partitions did
        crm.save_new(old_style)
        crm.record_response(RecordResponse(campaign, "reply", None, lead), at(2))
        crm.record_response(RecordResponse(campaign, "reply", None, lead), at(3))
        with closing(ReadModelStore(crm.database)) as store:
            Projector(crm, store, [model() for model in READ_MODELS.values()]).catch_up()
            kinds = store.query("SELECT kind FROM timeline_entries WHERE owner_id = ? ORDER BY occurred_at",
                                [str(lead)])

    assert [kind for (kind,) in kinds if "Respon" in kind] == [
        "Campaign.ResponseRecorded", "Lead.RespondedToCampaign", "Lead.RespondedToCampaign"]
