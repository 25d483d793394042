"""The external ids read model's write side: a row for each record created with an external id.

The key is (kind, external id): the log cannot hold two records of a kind with one external id, since the
id of such a record derives from it (`domain.external_ids.record_id`, checked by commands and `crm import`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.external_ids import bare_id
from domain.lead import Lead
from domain.ticket import Ticket
from projections.external_ids.rows import EXTERNAL_IDS, TABLES, ExternalIdRow
from projections.read_model import ReadModel, Rows
from projections.tables import micros

KINDS: dict[type, str] = {Customer.Registered: "customer", Lead.Captured: "lead", Deal.Opened: "deal",
                          Ticket.Opened: "ticket", Campaign.Planned: "campaign"}


class ExternalIdsReadModel(ReadModel):
    """Kind + external id → record id, for the records created with one."""

    name = "external_ids"
    tables = TABLES

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return dict.fromkeys(KINDS, _created)


def _created(event: Any, rows: Rows) -> None:
    if event.external_id:  # most records were entered here, not imported: nothing to file
        rows.put(EXTERNAL_IDS, ExternalIdRow(KINDS[type(event)], event.external_id, bare_id(event.external_id),
                                             str(event.originator_id), micros(event.occurred_at)))
