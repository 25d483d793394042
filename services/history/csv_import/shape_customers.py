"""Shapes `accounts` and `contacts` (Customer.Registered), `campaigns` (Campaign.Planned + Launched) and
`campaign_members` (Campaign.ResponseRecorded).

Accounts as Salesforce's Account (Id, Name, Industry, BillingCountry, AccountSource, CreatedDate) or
HubSpot's companies ("Record ID", "Company name", "Industry", "Country/Region", "Original Source",
"Create Date"); contacts as Contact (Id, FirstName, LastName, AccountId, Email, Phone, LeadSource,
CreatedDate): a contact's company is its account's name when that account was imported too. A contact's
external id names the source `<source>-contact` (`hubspot-contact:5001`; see `import_session`). Campaigns as
Campaign (Id, Name, Type, BudgetedCost, StartDate), or listed in the mapping's `[[campaigns]]` (id, name,
channel, budget, currency, start); members as CampaignMember (CampaignId, LeadId, ContactId, Status,
HasResponded, FirstRespondedDate, CreatedDate): each member that responded is one response of kind
`[values.response]` of its Status (default "reply"), at its first response (else its creation), in time
order. A campaign already in the log is compared with the log with its responses (`Session.reconcile`): new
members are recorded after those it holds.

Members are still recorded on the campaign's stream (`Campaign.ResponseRecorded`, which every read model takes
as the same fact as a respondent's `RespondedToCampaign`), not on the lead's or contact's as commands now do: an
import is one writer in one transaction, so the campaign never conflicts with itself here; and a response on
the respondent's stream must follow its other events in business time, which would need each member's
responses interleaved into its lead's rows, and re-imports of exports imported before to recognise the
members already on the campaign's stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from domain.base import CrmAggregate
from domain.campaign import Campaign
from domain.customer import Customer
from domain.errors import DomainError
from services.history.csv_import.csv_rows import Cells, Row, RowRefused
from domain.external_ids import qualified
from services.event_envelope import event_type
from services.history.csv_import.import_session import Session, column_and_reason, set_properties
from services.history.csv_import.mapping import FileSpec

REQUIRED = ("id", "created")
ROLES = ("id", "name", "first_name", "last_name", "company", "account", "region", "industry", "channel", "email",
         "phone", "created")
CAMPAIGN_REQUIRED = ("id", "name", "start")
CAMPAIGN_ROLES = ("id", "name", "channel", "budget", "currency", "start")
MEMBER_REQUIRED = ("campaign",)
MEMBER_ROLES = ("campaign", "lead", "contact", "status", "responded", "responded_date", "created")


def import_customers(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    kind = "contact" if spec.shape == "contacts" else "customer"  # separate id spaces (Session.source)
    session.each_row(spec, rows, kind, lambda cells, record: _customer(session, cells, record, kind))

def _customer(session: Session, cells: Cells, customer_id: UUID, kind: str) -> Iterator[CrmAggregate]:
    mapping, defaults = session.mapping, session.mapping.defaults
    name = cells.person()
    if not name:
        raise RowRefused(cells.column("name"), "is empty (no name)")
    company = cells.text("company") or _account_name(session, cells) or (name if cells.spec.shape == "accounts"
                                                                          else "")
    created = cells.required_instant("created").at
    customer = Customer.register(
        name, company, cells.text("region") or defaults["region"], cells.text("industry") or defaults["industry"],
        mapping.value("channel", cells.text("channel")), session.meta(created),
        email=cells.text("email"), phone=cells.text("phone"), id=customer_id,
        external_id=qualified(session.source(kind), cells.required("id")), vocabularies=session.vocabularies)
    set_properties(session, customer, cells.properties(), created)
    yield customer


def _account_name(session: Session, cells: Cells) -> str:
    account = cells.text("account")
    found = session.found("customer", account) if account else None
    return found.name if found is not None else ""


def import_campaigns(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    session.each_row(spec, rows, "campaign", lambda cells, record: _campaign(session, cells, record))

def mapping_campaigns(session: Session) -> None:
    """The mapping's own `[[campaigns]]`, as rows of a campaigns file named after the mapping."""
    spec = FileSpec(session.mapping.path, "campaigns", {role: role for role in CAMPAIGN_ROLES})
    rows = [Row(session.mapping.path.name, 0, {k: str(v) for k, v in raw.items()}) for raw in session.mapping.campaigns]
    import_campaigns(session, spec, [], rows)


def _campaign(session: Session, cells: Cells, campaign_id: UUID) -> Iterator[CrmAggregate]:
    mapping = session.mapping
    meta = session.meta(cells.required_instant("start").at)
    campaign = Campaign.plan(cells.required("name"), mapping.value("channel", cells.text("channel")),
                             cells.amount("budget"), cells.currency(), meta, id=campaign_id,
                             external_id=qualified(mapping.source, cells.required("id")),
                             vocabularies=session.vocabularies)
    campaign.launch(meta)
    yield campaign


def import_members(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    timed = []
    for row in rows:
        cells = Cells(session.mapping, spec, row)
        try:
            if "responded" in spec.columns and not cells.flag("responded"):
                continue
            at = cells.instant("responded_date") or cells.required_instant("created")
            timed.append((at.at, row.line, cells))
        except RowRefused as error:
            session.refuse([row], row, error.column, error.reason, None)
    for _, _, cells in sorted(timed, key=lambda t: (t[0], t[1])):
        _response(session, cells)


def _response(session: Session, cells: Cells) -> None:
    row = cells.row
    try:
        campaign_key = cells.required("campaign")
        campaign = session.found("campaign", campaign_key) or session.from_log(
            session.reference("campaign", campaign_key, cells.column("campaign")),
            lambda event: event_type(event) != "crm.Campaign.ResponseRecorded")
        lead, contact = cells.text("lead"), cells.text("contact")
        lead_id = session.reference("lead", lead, cells.column("lead")) if lead else None
        customer_id = session.reference("contact", contact, cells.column("contact")) if contact else None
        at = cells.instant("responded_date") or cells.required_instant("created")
        campaign.record_response(session.mapping.value("response", cells.text("status")), session.meta(at.at),
                                 customer_id=customer_id, lead_id=lead_id)
        session.tag(campaign, row)
    except (RowRefused, DomainError) as error:
        session.refuse([row], row, *column_and_reason(error), None)
