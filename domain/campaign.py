"""Campaigns: budget, recorded cost and the responses they bring, for ROI and CAC."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from domain import money
from domain.base import CrmAggregate, Meta, require_choice, require_text
from domain.errors import DomainError
from domain.vocabulary import ACQUISITION_CHANNELS, RESPONSE_KINDS

PLANNED, LAUNCHED, CLOSED = "planned", "launched", "closed"


class Campaign(CrmAggregate):
    class Planned(CrmAggregate.Created):
        name: str
        channel: str
        budget: Decimal
        currency: str

        def apply(self, campaign: Campaign) -> None:
            campaign.name = self.name
            campaign.channel = self.channel
            campaign.budget = self.budget
            campaign.currency = self.currency
            campaign.cost = Decimal(0)
            campaign.status = PLANNED

    class Launched(CrmAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = LAUNCHED

    class CostRecorded(CrmAggregate.Event):
        amount: Decimal
        note: str

        def apply(self, campaign: Campaign) -> None:
            campaign.cost += self.amount

    class ResponseRecorded(CrmAggregate.Event):
        kind: str
        customer_id: UUID | None
        lead_id: UUID | None

    class Closed(CrmAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = CLOSED

    @classmethod
    def plan(
        cls,
        name: str,
        channel: str,
        budget: Decimal | int | str,
        currency: str,
        meta: Meta,
        *,
        id: UUID | None = None,  # noqa: A002
    ) -> Campaign:
        return cls._open(
            cls.Planned,
            meta,
            id=id or uuid4(),
            name=require_text(name, "campaign name"),
            channel=require_choice(channel, ACQUISITION_CHANNELS, "campaign channel"),
            budget=money.amount(budget, "budget"),
            currency=money.currency(currency),
        )

    def launch(self, meta: Meta) -> None:
        if self.status != PLANNED:
            raise DomainError(f"only a planned campaign can be launched; this one is {self.status}")
        self._record(self.Launched, meta)

    def record_cost(self, amount: Decimal | int | str, meta: Meta, note: str = "") -> None:
        parsed = money.amount(amount, "cost")
        if parsed == 0:
            raise DomainError("cost must be greater than zero")
        self._record(self.CostRecorded, meta, amount=parsed, note=note)

    def record_response(
        self, kind: str, meta: Meta, *, customer_id: UUID | None = None, lead_id: UUID | None = None
    ) -> None:
        if self.status != LAUNCHED:
            raise DomainError(f"responses are recorded only while a campaign runs; this one is {self.status}")
        if customer_id is None and lead_id is None:
            raise DomainError("a response names the customer or the lead who responded")
        self._record(
            self.ResponseRecorded,
            meta,
            kind=require_choice(kind, RESPONSE_KINDS, "response kind"),
            customer_id=customer_id,
            lead_id=lead_id,
        )

    def close(self, meta: Meta) -> None:
        if self.status != LAUNCHED:
            raise DomainError(f"only a running campaign can be closed; this one is {self.status}")
        self._record(self.Closed, meta)
