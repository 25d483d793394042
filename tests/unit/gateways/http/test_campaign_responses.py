"""`POST /campaigns/{id}/responses` keeps its shape (200, the campaign's id and version) while the response
goes on the respondent's stream; a campaign that does not run answers 422 and nothing is written."""

from __future__ import annotations

from uuid import UUID

from fastapi.testclient import TestClient

from domain.customer import Customer
from services.application import CrmApplication
from tests.unit.gateways.http.conftest import auth, register_customer

SALES = auth("sales")


def test_a_response_answers_the_campaigns_unchanged_version_and_lands_on_the_customers_stream(
        client: TestClient, crm: CrmApplication) -> None:
    customer = register_customer(client)
    campaign = client.post("/campaigns", json={"name": "双十一促销", "channel": "social", "budget": "50000"},
                           headers=SALES).json()["id"]
    before = crm.event_count()
    planned = client.post(f"/campaigns/{campaign}/responses", json={"kind": "click", "customer_id": customer},
                          headers=SALES)
    assert planned.status_code == 422 and "this one is planned" in planned.json()["error"]
    assert crm.event_count() == before
    launched = client.post(f"/campaigns/{campaign}/launch", headers=SALES).json()["version"]
    answer = client.post(f"/campaigns/{campaign}/responses", json={"kind": "click", "customer_id": customer},
                         headers=SALES)
    assert answer.status_code == 200 and answer.json() == {"id": campaign, "version": launched}
    assert type(crm.history(UUID(customer))[-1]) is Customer.RespondedToCampaign
