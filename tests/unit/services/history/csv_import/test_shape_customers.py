"""Shapes `accounts`, `contacts`, `campaigns`, `campaign_members` from the Salesforce and HubSpot samples."""

from __future__ import annotations

from domain.external_ids import external_uuid
from services.event_envelope import event_type
from services.history.csv_import.csv_importer import plan_import
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, MAPPING, key


def _of(events, kind: str, source: str, external_id: str) -> list:
    return [e for e in events if key(e.originator_id) == key(external_uuid(kind, source, external_id))]


def test_accounts_and_contacts_become_customers_with_their_source_values(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    assert report.refused == []
    (star,) = _of(events, "customer", "salesforce", "001Dn00000A1bCdEAG")
    assert (star.name, star.company, star.industry, star.region, star.channel) == \
        ("上海星辰科技有限公司", "上海星辰科技有限公司", "Technology", "China", "partner")
    (globex,) = _of(events, "customer", "salesforce", "001Dn00000A1bCdEAH")
    assert (globex.industry, globex.region, globex.channel) == ("unknown", "unknown", "web")  # the defaults
    (lina,) = _of(events, "customer", "salesforce-contact", "003Dn00000B1cDeFAB")  # contacts: their own id space
    assert (lina.name, lina.company, lina.email) == ("娜 李", "上海星辰科技有限公司", "lina@example.cn")
    assert lina.external_id == "salesforce-contact:003Dn00000B1cDeFAB"


def test_hubspot_companies_map_their_original_source(app) -> None:
    _, _, events = plan_import(app, load_mapping(FIXTURES / "hubspot" / "mapping.toml"))
    (hooli,) = _of(events, "customer", "hubspot", "5001")
    assert (hooli.channel, hooli.industry) == ("search_ads", "COMPUTER_SOFTWARE")


def test_campaigns_are_planned_and_launched_and_members_who_responded_are_responses(app) -> None:
    _, _, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    campaign = _of(events, "campaign", "salesforce", "701Dn00000E1fGhAAA")
    assert [event_type(e) for e in campaign] == ["crm.Campaign.Planned", "crm.Campaign.Launched",
                                                 "crm.Campaign.ResponseRecorded", "crm.Campaign.ResponseRecorded"]
    assert (campaign[0].channel, str(campaign[0].budget)) == ("event", "2000")
    first, second = campaign[2:]
    assert (first.kind, first.lead_id) == ("reply", external_uuid("lead", "salesforce", "00QDn00000D1eFgAAA"))
    assert (second.kind, second.customer_id) == ("attendance",
                                                 external_uuid("customer", "salesforce-contact", "003Dn00000B1cDeFAB"))


def test_campaigns_listed_in_the_mapping(app, export) -> None:
    mapping = MAPPING + '[[campaigns]]\nid = "C1"\nname = "春季展会"\nchannel = "event"\nbudget = "500"\nstart = "2024-01-01"\n'
    _, report, events = plan_import(app, export({"accounts.csv": "Id,Name,Created\n", "deals.csv": "Id,Name,Account,"
                                                 "Stage,Amount,Currency,Created,Closed,Owner\n"}, mapping))
    assert report.refused == []
    assert [event_type(e) for e in _of(events, "campaign", "crm1", "C1")] == ["crm.Campaign.Planned",
                                                                             "crm.Campaign.Launched"]


def test_an_account_without_a_name_or_with_an_unknown_channel_is_refused(app, export) -> None:
    accounts = "Id,Name,Created\nA1,,2024-01-01T00:00:00Z\n"
    _, report, _ = plan_import(app, export({"accounts.csv": accounts, "deals.csv": "Id,Name,Account,Stage,Amount,"
                                            "Currency,Created,Closed,Owner\n"},
                                           MAPPING.replace('channel = "web"', 'channel = "billboard"')))
    (refused,) = report.refused
    assert (refused.line, refused.column) == (2, "Name")
    accounts = "Id,Name,Created\nA1,Acme,2024-01-01T00:00:00Z\n"
    _, report, _ = plan_import(app, export({"accounts.csv": accounts}, MAPPING.replace('channel = "web"',
                                                                                       'channel = "billboard"')))
    assert "unknown acquisition channel 'billboard'" in report.refused[0].reason


def test_a_company_and_a_contact_with_one_id_are_two_customers(app, export) -> None:
    mapping = MAPPING.split("[[files]]")[0] + """
[[files]]
path = "companies.csv"
shape = "accounts"
columns = { id = "Record ID", name = "Company name", created = "Create Date" }
[[files]]
path = "contacts.csv"
shape = "contacts"
columns = { id = "Record ID", first_name = "First Name", last_name = "Last Name", created = "Create Date" }
"""
    _, report, events = plan_import(app, export({
        "companies.csv": "Record ID,Company name,Create Date\n5001,Hooli,2024-01-01T00:00:00Z\n",
        "contacts.csv": "Record ID,First Name,Last Name,Create Date\n5001,Gavin,Belson,2024-01-02T00:00:00Z\n"},
        mapping))
    assert report.refused == []
    (company,) = _of(events, "customer", "crm1", "5001")
    (contact,) = _of(events, "customer", "crm1-contact", "5001")
    assert (company.name, company.external_id, contact.name, contact.external_id) == \
        ("Hooli", "crm1:5001", "Gavin Belson", "crm1-contact:5001")
