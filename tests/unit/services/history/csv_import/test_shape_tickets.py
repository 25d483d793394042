"""Shape `tickets`: Salesforce cases and HubSpot tickets → opened, assigned, status, resolved and closed."""

from __future__ import annotations

from domain.external_ids import external_uuid
from services.event_envelope import event_type
from services.history.csv_import.csv_importer import plan_import
from services.history.csv_import.mapping import load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES, MAPPING, key


def _ticket(events, source: str, ticket: str) -> list:
    return [e for e in events if key(e.originator_id) == key(external_uuid("ticket", source, ticket))]


def test_salesforce_cases(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "salesforce" / "mapping.toml"))
    assert report.refused == []
    closed = _ticket(events, "salesforce", "500Dn00000F1gHiAAA")
    assert [event_type(e).split(".")[-1] for e in closed] == ["Opened", "Assigned", "Resolved", "Closed"]
    assert (closed[0].priority, closed[0].channel, closed[1].assignee) == ("high", "phone", "005Dn00000OwnerC3")
    working = _ticket(events, "salesforce", "500Dn00000F1gHiAAB")
    assert [(event_type(e).split(".")[-1], getattr(e, "to_status", "")) for e in working] == \
        [("Opened", ""), ("StatusChanged", "in_progress")]
    assert (working[0].subject, working[0].priority) == ("发票抬头错误", "normal")
    assert len(_ticket(events, "salesforce", "500Dn00000F1gHiAAC")) == 1


def test_hubspot_tickets(app) -> None:
    _, report, events = plan_import(app, load_mapping(FIXTURES / "hubspot" / "mapping.toml"))
    assert report.refused == []
    waiting = _ticket(events, "hubspot", "7002")
    assert [getattr(e, "to_status", "") for e in waiting] == ["", "waiting_customer"]


TICKETS = MAPPING + """
[[files]]
path = "tickets.csv"
shape = "tickets"
columns = { id = "Id", account = "Account", priority = "Priority", status = "Status", created = "Created" }
"""


def test_an_unknown_priority_or_status_or_account_is_refused(app, export) -> None:
    tickets = ("Id,Account,Priority,Status,Created\n"
               "T1,A1,Critical,New,2024-01-01T00:00:00Z\n"
               "T2,A1,,Pondering,2024-01-01T00:00:00Z\n"
               "T3,A7,,New,2024-01-01T00:00:00Z\n")
    _, report, _ = plan_import(app, export({"accounts.csv": "Id,Name,Created\nA1,Acme,2024-01-01T00:00:00Z\n",
                                            "deals.csv": "Id,Name,Account,Stage,Amount,Currency,Created,Closed,Owner\n",
                                            "tickets.csv": tickets}, TICKETS))
    reasons = [r.reason for r in report.refused]
    assert "unknown priority 'Critical'" in reasons[0]
    assert "unknown ticket status 'Pondering'" in reasons[1]
    assert reasons[2].startswith("unknown account 'A7'")
