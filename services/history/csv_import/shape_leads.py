"""Shape `leads`: one row per lead, as Salesforce's Lead (Id, FirstName, LastName or Name, Company, LeadSource,
Status, OwnerId, CreatedDate, IsConverted, ConvertedDate, ConvertedAccountId, ConvertedOpportunityId) or
HubSpot's contacts in a lead status.

A lead is captured at its creation and assigned to its owner then; its Status, through `[values.lead_status]`,
says how far it went: new, contacted, qualified, disqualified or converted (Salesforce's defaults are
understood: "Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted").
The domain asks a lead to be contacted before it is qualified and qualified before it is converted, and an
export keeps only the end: the steps it implies are recorded at the lead's status date (`status_date`,
e.g. LastModifiedDate) or its creation, the conversion at its ConvertedDate. A conversion names the
account and the opportunity it became, which this import or an earlier one must hold; a lead converted
without an opportunity is recorded as qualified.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from domain.base import CrmAggregate
from domain.lead import Lead
from services.history.csv_import.csv_rows import Cells, Row, RowRefused
from domain.external_ids import qualified
from services.history.csv_import.import_session import Session, set_properties
from services.history.csv_import.mapping import FileSpec

REQUIRED = ("id", "created")
ROLES = ("id", "name", "first_name", "last_name", "company", "region", "industry", "channel", "status", "owner",
         "created", "status_date", "converted", "converted_date", "converted_account", "converted_opportunity",
         "email", "phone", "reason")
STEPS = ("new", "contacted", "qualified", "converted")
STATUSES = {"open - not contacted": "new", "working - contacted": "contacted", "closed - converted": "converted",
            "closed - not converted": "disqualified", "new": "new", "contacted": "contacted",
            "qualified": "qualified", "disqualified": "disqualified", "converted": "converted"}
CONTACTED_SUMMARY = "contacted (imported)"


def import_leads(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    session.each_row(spec, rows, "lead", lambda cells, record: _lead(session, cells, record))

def status_of(session: Session, cells: Cells) -> str:
    if cells.text("converted") and cells.flag("converted"):
        return "converted"
    raw = cells.text("status")
    mapped = session.mapping.values.get("lead_status", {}).get(raw.casefold()) or STATUSES.get(raw.casefold())
    if raw and mapped is None:
        raise RowRefused(cells.column("status"), f"unknown lead status {raw!r}; map it in [values.lead_status] to "
                                                 "new, contacted, qualified, disqualified or converted")
    return mapped or "new"


def _lead(session: Session, cells: Cells, lead_id: UUID) -> Iterator[CrmAggregate]:
    mapping, defaults = session.mapping, session.mapping.defaults
    status = status_of(session, cells)
    created = cells.required_instant("created").at
    contact = " ".join(p for p in (cells.text("email"), cells.text("phone")) if p)
    lead = Lead.capture(cells.person() or defaults["lead_name"], cells.text("company"),
                        cells.text("region") or defaults["region"], cells.text("industry") or defaults["industry"],
                        mapping.value("channel", cells.text("channel")), session.meta(created), contact=contact,
                        id=lead_id, external_id=qualified(mapping.source, cells.required("id")),
                        vocabularies=session.vocabularies)
    set_properties(session, lead, cells.properties(), created)
    owner = cells.text("owner")
    if owner:
        lead.assign(owner, "manual", session.meta(created))
    step_at = max(created, (cells.instant("status_date") or cells.required_instant("created")).at)
    if status == "disqualified":
        lead.disqualify(cells.text("reason") or cells.text("status") or defaults["loss_reason"], session.meta(step_at))
    elif status != "new":
        _advance(session, cells, lead, status, step_at)
    yield lead


def _advance(session: Session, cells: Cells, lead: Lead, status: str, at: object) -> None:
    meta = session.meta(at)  # type: ignore[arg-type]
    if lead.owner is None:
        lead.assign(session.mapping.defaults["owner"], "manual", meta)
    lead.contact(session.mapping.defaults.get("touch_channel", "email"), CONTACTED_SUMMARY, meta,
                 vocabularies=session.vocabularies)
    if status == "contacted":
        return
    converted_at = cells.instant("converted_date")
    lead.qualify("", meta if converted_at is None else session.meta(max(meta.occurred_at, converted_at.at)))
    opportunity = cells.text("converted_opportunity")
    if status == "converted" and opportunity:
        deal_id = session.reference("deal", opportunity, cells.column("converted_opportunity"))
        customer_id = session.reference("customer", cells.required("converted_account"),
                                        cells.column("converted_account"))
        lead.convert(customer_id, deal_id, session.meta(lead.last_occurred_at))
