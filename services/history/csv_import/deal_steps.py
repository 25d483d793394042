"""A deal's history as both opportunity shapes find it: opened, then moved to a source stage at an instant.

A source stage means an open stage, won or lost (the mapping's `[stages.<pipeline>]`); moving there is the
domain method a user would have called: `change_stage`, `win`, `lose`, or `reopen` first when a closed
deal comes back to an open stage (or to the other outcome).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from domain.base import CrmAggregate
from domain.customer import Customer
from domain.deal import Deal
from domain.pipeline import LOST, WON, Pipeline
from services.history.csv_import.csv_rows import Cells, RowRefused
from domain.external_ids import qualified
from services.history.csv_import.import_session import Session

REOPEN_REASON = "reopened (imported)"


class DealSteps:
    """One deal being built from an export: each step is a domain method, stamped with the session's meta."""

    def __init__(self, session: Session, pipeline: Pipeline, deal: Deal, loss_reason: str) -> None:
        self.session, self.pipeline, self.deal, self.loss_reason = session, pipeline, deal, loss_reason

    @property
    def last(self) -> datetime:
        return self.deal.last_occurred_at  # type: ignore[no-any-return]

    def move(self, target: str, at: datetime, actor: str = "") -> None:
        """To open stage, won or lost `target` at `at`; nothing if the deal is there already."""
        meta, deal = self.session.meta(at, actor), self.deal
        if target in (WON, LOST):
            if deal.status == target:
                return
            if not deal.is_open:
                deal.reopen(self.pipeline, REOPEN_REASON, meta)
            deal.win(meta) if target == WON else deal.lose(self.loss_reason, meta, vocabularies=self.session.vocabularies)
        elif not deal.is_open:
            deal.reopen(self.pipeline, REOPEN_REASON, meta, stage=target)
        elif target != deal.stage:
            deal.change_stage(self.pipeline, target, "", meta)

    def amount(self, amount: Decimal, at: datetime, actor: str = "") -> None:
        if self.deal.is_open and amount != self.deal.amount:
            self.deal.change_amount(amount, self.session.meta(at, actor))

    def owner(self, owner: str, at: datetime, actor: str = "") -> None:
        if owner and owner != self.deal.owner:
            self.deal.change_owner(owner, self.session.meta(at, actor))


def open_deal(session: Session, pipeline: Pipeline, deal_id: UUID, external_id: str, customer_id: UUID,
              fields: dict[str, object], at: datetime, actor: str = "") -> Deal:
    """Deal.open with the export's values; `fields`: title, amount, currency, owner, stage, expected_close."""
    expected = fields.get("expected_close")
    return Deal.open(pipeline, customer_id, str(fields["title"]), fields["amount"],  # type: ignore[arg-type]
                     str(fields["currency"]), str(fields["owner"]), session.meta(at, actor),
                     stage=str(fields["stage"]),  # its id: the key `deal_id` placed in its customer's partition
                     expected_close=expected if isinstance(expected, date) else None,
                     external_id=qualified(session.mapping.source, external_id))


def deal_customer(session: Session, cells: Cells, at: datetime) -> tuple[UUID, list[CrmAggregate]]:
    """The customer a deal belongs to (its account); with the file's `create_customers = true`, an account no
    file holds is registered from the deal's `account_name` (or its id) at the deal's creation."""
    account = cells.required("account")
    try:
        return session.reference("customer", account, cells.column("account")), []
    except RowRefused:
        if not cells.spec.options.get("create_customers") or session.uuid("customer", account) in \
                session.refused_records:
            raise
    found = session.found("customer", account)
    if found is not None:
        return found.id, []
    defaults = session.mapping.defaults
    name = cells.text("account_name") or account
    customer = Customer.register(name, name, defaults["region"], defaults["industry"], defaults["channel"],
                                 session.meta(at), id=session.uuid("customer", account),
                                 external_id=qualified(session.mapping.source, account),
                                 vocabularies=session.vocabularies)
    return customer.id, [customer]
