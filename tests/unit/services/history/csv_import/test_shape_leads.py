"""Shape `leads`: each Salesforce status becomes the steps the domain asks for; a conversion names its deal."""

from __future__ import annotations

from domain.external_ids import external_uuid
from services.event_envelope import event_type
from services.history.csv_import.csv_importer import plan_import
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, MAPPING, key


def _types(events, lead: str) -> list[str]:
    lead_id = external_uuid("lead", "salesforce", lead)
    return [event_type(e).split(".")[-1] for e in events if e.originator_id == lead_id]


def test_each_lead_status_becomes_its_steps(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    assert report.refused == []
    assert _types(events, "00QDn00000D1eFgAAA") == ["Captured", "Assigned", "Contacted", "Qualified", "Converted"]
    assert _types(events, "00QDn00000D1eFgAAB") == ["Captured", "Assigned", "Contacted"]
    assert _types(events, "00QDn00000D1eFgAAC") == ["Captured", "Disqualified"]
    assert _types(events, "00QDn00000D1eFgAAD") == ["Captured"]
    converted = next(e for e in events if event_type(e) == "crm.Lead.Converted")
    assert key(converted.deal_id) == key(external_uuid("deal", "salesforce", "006Dn00000C1dEfGAA"))
    assert converted.customer_id == external_uuid("customer", "salesforce", "001Dn00000A1bCdEAF")
    captured = next(e for e in events if event_type(e) == "crm.Lead.Captured"
                    and e.originator_id == external_uuid("lead", "salesforce", "00QDn00000D1eFgAAB"))
    assert (captured.name, captured.channel, captured.company) == ("伟 王", "phone", "杭州某贸易公司")


LEADS = MAPPING + """
[[files]]
path = "leads.csv"
shape = "leads"
columns = { id = "Id", name = "Name", status = "Status", created = "Created", converted_opportunity = "Opp", converted_account = "Account" }
"""


def test_an_unknown_status_or_a_conversion_into_an_unknown_deal_is_refused(app, export) -> None:
    leads = ("Id,Name,Status,Created,Opp,Account\n"
             "L1,Ann,Thinking about it,2024-01-01T00:00:00Z,,\n"
             "L2,Bo,Closed - Converted,2024-01-01T00:00:00Z,D9,A1\n")
    _, report, _ = plan_import(app, export({"accounts.csv": "Id,Name,Created\nA1,Acme,2024-01-01T00:00:00Z\n",
                                            "deals.csv": "Id,Name,Account,Stage,Amount,Currency,Created,Closed,Owner\n",
                                            "leads.csv": leads}, LEADS))
    first, second = report.refused
    assert (first.line, first.column) == (2, "Status") and "unknown lead status 'Thinking about it'" in first.reason
    assert (second.line, second.column, second.reason) == (3, "Opp", "unknown opportunity 'D9': in no imported "
                                                                      "file nor in the log")
