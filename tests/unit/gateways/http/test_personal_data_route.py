"""Downstream services open the seals they got from crm.events while the person is not forgotten."""

from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.application import CrmApplication
from services.commands import ForgetCustomer, RegisterCustomer
from tests.conftest import at
from tests.unit.gateways.http.conftest import auth


def _seals(crm: CrmApplication, customer: UUID) -> list[str]:
    stored = crm.recorder.select_notifications(1, 1000)
    registered = next(crm.mapper.to_sealed_event(n) for n in stored
                      if n.originator_id == customer and "Registered" in n.topic)
    return [registered.name, registered.email]


def test_a_subscriber_opens_seals_until_the_person_is_forgotten(api: FastAPI, client: TestClient) -> None:
    crm: CrmApplication = api.state.crm
    customer = crm.register_customer(RegisterCustomer("王小明", "华东", "零售", "web",
                                                      email="wxm@example.com"), at(0))
    seals = _seals(crm, customer)

    opened = client.post("/personal-data/open", headers=auth("subscriber"), json={"sealed": seals})
    crm.forget_customer(ForgetCustomer(customer), at(1, "dpo"))
    after = client.post("/personal-data/open", headers=auth("subscriber"), json={"sealed": seals})

    assert seals[0].startswith(f"pii:v1:{customer}:")
    assert opened.status_code == 200 and opened.json() == {"plain": ["王小明", "wxm@example.com"]}
    assert after.json() == {"plain": ["(forgotten)", "(forgotten)"]}


def test_only_admin_and_subscribers_may_open_seals(client: TestClient) -> None:
    for role in ("sales", "service", "analyst"):
        refused = client.post("/personal-data/open", headers=auth(role), json={"sealed": ["pii:v1:x"]})
        assert refused.status_code == 403, role


def test_something_that_is_not_a_seal_is_refused(client: TestClient) -> None:
    response = client.post("/personal-data/open", headers=auth("admin"), json={"sealed": ["王小明"]})

    assert response.status_code == 422 and "sealed" in response.text
