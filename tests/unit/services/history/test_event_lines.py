"""`crm import`'s raw lines and external ids: lines written before creation events had `external_id` import as
"" (as their stored events upcast), new lines keep it, and a bad or non-deriving external id is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from domain.customer import Customer
from domain.deal import Deal
from domain.external_ids import external_uuid
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from services.history import event_lines, exporter, importer
from services.settings import database_from_url
from tests.conftest import at

CREATIONS = ("crm.Customer.Registered", "crm.Lead.Captured", "crm.Deal.Opened", "crm.Ticket.Opened",
             "crm.Campaign.Planned")


def _exported(tmp_path: Path) -> list[dict[str, Any]]:
    crm = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    crm.ensure_default_pipelines(at(-1, "setup"))
    customer = crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", source="hubspot",
                                                      external_id="501"), at(0))
    crm.open_deal(OpenDeal(customer, "云服务采购", "1000", source="salesforce", external_id="006Dn00000AbCdE"), at(1))
    crm.open_deal(OpenDeal(customer, "门店系统", "2000"), at(2))
    path = tmp_path / "history.jsonl"
    with path.open("wb") as out:
        exporter.export_history(crm, out)
    crm.close()
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _import(target: CrmApplication, tmp_path: Path, lines: list[dict[str, Any]]) -> None:
    path = tmp_path / "import.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    importer.import_history(target, path, batch=2)


def test_every_creation_event_type_may_omit_external_id_in_a_line() -> None:
    for name in CREATIONS:
        assert event_lines.SCHEMAS[name].added["external_id"] == ""
    assert event_lines.SCHEMAS["crm.Deal.Lost"].added == {"competitor": ""}


def test_responses_and_leads_written_before_variants_may_omit_the_variant() -> None:
    for name in ("crm.Lead.Captured", "crm.Lead.RespondedToCampaign", "crm.Customer.RespondedToCampaign"):
        assert event_lines.SCHEMAS[name].added["variant"] == ""


def test_lines_with_and_without_external_ids_import_alike(target: CrmApplication, tmp_path: Path) -> None:
    lines = _exported(tmp_path)
    for line in lines:
        if line["type"] == "crm.Deal.Opened" and not line["data"]["external_id"]:
            del line["data"]["external_id"]  # as release 1 wrote it
    _import(target, tmp_path, lines)

    opened = {e.title: e.external_id for _, e in target.read_log() if isinstance(e, Deal.Opened)}
    assert opened == {"云服务采购": "salesforce:006Dn00000AbCdE", "门店系统": ""}
    (registered,) = [e for _, e in target.read_log() if isinstance(e, Customer.Registered)]
    assert registered.external_id == "hubspot:501"
    assert registered.originator_id == external_uuid("customer", "hubspot", "501")


@pytest.mark.parametrize(("external_id", "reason"), [
    ("salesforce006", 'must be "<source>:<id>"'),
    ("Sales Force:1", "source 'Sales Force' must be lower-case"),
    ("salesforce: 1", "must not start or end with spaces"),
    ("hubspot:999", "is not the id of deal hubspot:999"),  # the line's subject was derived from another id
])
def test_a_bad_or_non_deriving_external_id_is_refused_by_line(target: CrmApplication, tmp_path: Path,
                                                              external_id: str, reason: str) -> None:
    lines = _exported(tmp_path)
    opened = next(n for n, line in enumerate(lines) if line["type"] == "crm.Deal.Opened")
    lines[opened]["data"]["external_id"] = external_id
    with pytest.raises(importer.ImportRefused) as refused:
        _import(target, tmp_path, lines)
    assert reason in str(refused.value) and "external_id" in str(refused.value)
    assert target.event_count() == 0


def test_a_customers_external_id_may_not_be_an_email_address(target: CrmApplication, tmp_path: Path) -> None:
    lines = _exported(tmp_path)
    registered = next(n for n, line in enumerate(lines) if line["type"] == "crm.Customer.Registered")
    lines[registered]["data"]["external_id"] = "hubspot:wf@example.cn"
    with pytest.raises(importer.ImportRefused) as refused:
        _import(target, tmp_path, lines)
    assert "must not be an e-mail address" in str(refused.value)
