"""External ids on the real PostgreSQL: HTTP creations derive ids and refuse a second record with one (even
two at once), lookups by `source:id` and bare id go through the read model, and an old-shape creation event
upcasts to no external id."""

from __future__ import annotations

from threading import Barrier, Thread
from uuid import UUID

from fastapi.testclient import TestClient

from domain.customer import Customer
from domain.external_ids import imported_id
from domain.partitions import partition_of
from services.commands import RegisterCustomer
from services.projection_runtime.registry import projector_for
from tests.conftest import at
from tests.support.schema_evolution import store_in_old_shape
from tests.integration import test_http_postgres

SALES = test_http_postgres.SALES
client = test_http_postgres.client  # the fixture: the API on a fresh database
CUSTOMER = {"name": "欧阳娜娜", "region": "华南", "industry": "零售", "channel": "social",
            "source": "salesforce", "external_id": "001Dn00000XyZ"}


def test_two_creations_of_one_external_id_at_once_make_one_record_and_one_409(client: TestClient) -> None:
    start, statuses = Barrier(2), []

    def register() -> None:
        start.wait()
        statuses.append(client.post("/customers", json=CUSTOMER, headers=SALES).status_code)

    threads = [Thread(target=register) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]


def test_lookups_by_external_id_on_postgresql(client: TestClient) -> None:
    customer = client.post("/customers", json=CUSTOMER, headers=SALES).json()["id"]
    for source in ("salesforce", "hubspot"):
        assert client.post("/deals", json={"customer_id": customer, "title": "门店系统", "amount": "1000",
                                           "source": source, "external_id": "1001"}, headers=SALES).status_code == 201
    app = client.app.state  # type: ignore[attr-defined]
    projector_for(app.crm, app.store).catch_up(strict=False)
    assert client.get("/customers/001Dn00000XyZ", headers=SALES).json()["id"] == customer
    deal = client.get("/deals/hubspot:1001", headers=SALES).json()  # its source id's UUID in the customer's partition
    assert deal["id"] == str(imported_id("deal", "hubspot:1001", partition_of(UUID(customer))))
    assert deal["external_id"] == "hubspot:1001"
    ambiguous = client.get("/deals/1001", headers=SALES)
    assert ambiguous.status_code == 409 and len(ambiguous.json()["detail"]["candidates"]) == 2
    assert client.get("/customers/salesforce:001Dn00000XyZ/timeline", headers=SALES).json()["external_id"] == \
        "salesforce:001Dn00000XyZ"


def test_an_old_shape_registration_upcasts_to_no_external_id(client: TestClient) -> None:
    crm = client.app.state.crm  # type: ignore[attr-defined]
    customer = Customer.register("张三", "某公司", "华东", "制造业", "web", at(0))
    store_in_old_shape(crm, customer.collect_events()[0], drop=("external_id",))
    assert crm.get(Customer, customer.id).external_id == ""
    assert crm.register_customer(RegisterCustomer("李四", "华东", "制造业", "web"), at(1))
