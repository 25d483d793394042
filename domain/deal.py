"""Deals (opportunities) moving through a pipeline's stages until won or lost."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from domain import money
from domain.base import CrmAggregate, Meta, require_business_date, require_text
from domain.errors import DomainError
from domain.external_ids import record_id
from domain.forecasting import StageForecast, require_category, require_probability, standing
from domain.partitions import partition_of
from domain.pipeline import LOST, WON, Pipeline
from domain.properties import HasProperties, apply_changes
from domain.vocabulary import DEFAULT_VOCABULARIES, LOSS_REASON, Vocabularies

OPEN = "open"


# The rules on a deal's state, as functions of that state: the commands below and `crm import`'s checks
# (`services.history.rules.deal_lifecycle`, on a compact state per deal) both call them.

def require_open(status: str, action: str) -> None:
    if status != OPEN:
        raise DomainError(f"cannot {action}: deal is {status}; reopen it first")


def require_closed(status: str) -> None:
    if status == OPEN:
        raise DomainError("deal is already open")


def require_new_stage(stage: str, to_stage: str) -> None:
    if to_stage == stage:
        raise DomainError(f"deal is already in stage {to_stage!r}")


def require_pipeline(deal_pipeline: str, pipeline: str) -> None:
    if pipeline != deal_pipeline:
        raise DomainError(f"deal belongs to pipeline {deal_pipeline!r}, not {pipeline!r}")


class Deal(HasProperties, CrmAggregate):
    """An opportunity: its stage, amount, owner and properties; every change is an audited event."""

    class Opened(CrmAggregate.Created):
        """Version 2 added `external_id` ("<source>:<id>" of the record it was imported from; "" when none)."""

        class_version = 2
        customer_id: UUID
        title: str
        pipeline: str
        stage: str
        amount: Decimal
        currency: str
        owner: str
        expected_close: date | None
        lead_id: UUID | None
        campaign_id: UUID | None
        external_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["external_id"] = ""

        def apply(self, deal: Deal) -> None:
            deal.customer_id = self.customer_id
            deal.title = self.title
            deal.pipeline = self.pipeline
            deal.stage = self.stage
            deal.amount = self.amount
            deal.currency = self.currency
            deal.owner = self.owner
            deal.expected_close = self.expected_close
            deal.lead_id = self.lead_id
            deal.campaign_id = self.campaign_id
            deal.external_id = self.external_id
            deal.status = OPEN
            deal.probability = deal.forecast_category = None

    class StageChanged(CrmAggregate.Event):
        from_stage: str
        to_stage: str
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.stage = self.to_stage
            deal.probability = deal.forecast_category = None  # the new stage's defaults (as Salesforce does)

    class AmountChanged(CrmAggregate.Event):
        old_amount: Decimal
        new_amount: Decimal

        def apply(self, deal: Deal) -> None:
            deal.amount = self.new_amount

    class OwnerChanged(CrmAggregate.Event):
        old_owner: str
        new_owner: str

        def apply(self, deal: Deal) -> None:
            deal.owner = self.new_owner

    class PropertiesChanged(CrmAggregate.Event):
        """Named properties set (a value) or removed ("") — see `domain.properties`."""

        changes: dict[str, str]

        def apply(self, deal: Deal) -> None:
            apply_changes(deal, self.changes)

    class Won(CrmAggregate.Event):
        from_stage: str
        note: str

        def apply(self, deal: Deal) -> None:
            deal.status = WON

    class Lost(CrmAggregate.Event):
        """Version 2 added `competitor` (who won instead; empty when unknown or not applicable)."""

        class_version = 2
        from_stage: str
        reason: str
        competitor: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["competitor"] = ""

        def apply(self, deal: Deal) -> None:
            deal.status = LOST

    class Reopened(CrmAggregate.Event):
        stage: str
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.status = OPEN
            deal.stage = self.stage
            deal.probability = deal.forecast_category = None

    class ExpectedCloseChanged(CrmAggregate.Event):
        """The date the deal is expected to close moved (a slip, or a pull-in); `old_close` None: it had none."""

        old_close: date | None
        new_close: date
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.expected_close = self.new_close

    class ProbabilityChanged(CrmAggregate.Event):
        """The deal's own probability (0–100 %); None: back to its stage's default. A stage change or a
        reopening clears it, so that the new stage's default applies."""

        old_probability: int | None
        new_probability: int | None
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.probability = self.new_probability

    class ForecastCategoryChanged(CrmAggregate.Event):
        """The deal's own forecast category (`domain.forecasting.OPEN_CATEGORIES`); None: its stage's default.
        Cleared by a stage change or a reopening, as its probability is."""

        old_category: str | None
        new_category: str | None
        reason: str

        def apply(self, deal: Deal) -> None:
            deal.forecast_category = self.new_category

    @classmethod
    def open(
        cls,
        pipeline: Pipeline,
        customer_id: UUID,
        title: str,
        amount: Decimal | int | str,
        currency: str,
        owner: str,
        meta: Meta,
        *,
        stage: str | None = None,
        expected_close: date | None = None,
        lead_id: UUID | None = None,
        campaign_id: UUID | None = None,
        external_id: str = "",
        id: UUID | None = None,  # noqa: A002 - the library's name for it
    ) -> Deal:
        first_stage = stage if stage is not None else pipeline.stage_keys[0]
        pipeline.index(first_stage)
        return cls._open(
            cls.Opened,
            meta,
            id=record_id("deal", external_id, id, partition_of(customer_id)),  # in its customer's home partition
            customer_id=customer_id,
            title=require_text(title, "deal title"),
            pipeline=pipeline.key,
            stage=first_stage,
            amount=money.amount(amount),
            currency=money.currency(currency),
            owner=require_text(owner, "owner"),
            expected_close=None if expected_close is None else require_business_date(expected_close, "expected_close"),
            lead_id=lead_id,
            campaign_id=campaign_id,
            external_id=external_id,
        )

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def _require_open(self, action: str) -> None:
        require_open(self.status, action)

    def _require_pipeline(self, pipeline: Pipeline) -> None:
        require_pipeline(self.pipeline, pipeline.key)

    def change_stage(self, pipeline: Pipeline, to_stage: str, reason: str, meta: Meta) -> None:
        self._require_pipeline(pipeline)
        self._require_open("change its stage")
        pipeline.index(to_stage)
        require_new_stage(self.stage, to_stage)
        self._record(self.StageChanged, meta, from_stage=self.stage, to_stage=to_stage, reason=reason)

    def change_amount(self, new_amount: Decimal | int | str, meta: Meta) -> None:
        self._require_open("change its amount")
        parsed = money.amount(new_amount)
        if parsed == self.amount:
            raise DomainError(f"deal amount is already {parsed}")
        self._record(self.AmountChanged, meta, old_amount=self.amount, new_amount=parsed)

    def change_owner(self, new_owner: str, meta: Meta) -> None:
        new_owner = require_text(new_owner, "owner")
        if new_owner == self.owner:
            raise DomainError(f"deal is already owned by {new_owner!r}")
        self._record(self.OwnerChanged, meta, old_owner=self.owner, new_owner=new_owner)

    @property
    def own_probability(self) -> int | None:
        """The probability set on the deal itself (None: its stage's default applies)."""
        return self.__dict__.get("probability")

    @property
    def own_category(self) -> str | None:
        return self.__dict__.get("forecast_category")

    def forecast(self, pipeline: Pipeline) -> StageForecast:
        """Where the deal stands now: won → closed 100 %, lost → omitted 0 %, open → its own or its stage's."""
        default = pipeline.stage_forecast(self.stage) if self.stage in pipeline.stage_keys else None
        return standing(self.status, default, self.own_probability, self.own_category)

    def change_expected_close(self, new_close: date, reason: str, meta: Meta) -> None:
        """Move the expected close date; refused on a closed deal (its win or loss dated it) or to the same date."""
        self._require_open("change its expected close date")
        require_business_date(new_close, "expected_close")
        if new_close == self.expected_close:
            raise DomainError(f"deal is already expected to close on {new_close.isoformat()}")
        self._record(self.ExpectedCloseChanged, meta, old_close=self.expected_close, new_close=new_close,
                     reason=reason.strip())

    def change_probability(self, probability: int | None, reason: str, meta: Meta) -> None:
        """Set the deal's own probability, or (None) go back to its stage's default."""
        new = None if probability is None else require_probability(probability)
        self._change_own("probability", self.own_probability, new, f"{new} %", reason, meta)

    def change_forecast_category(self, category: str | None, reason: str, meta: Meta) -> None:
        """Set the deal's own forecast category, or (None) go back to its stage's default."""
        new = None if category is None else require_category(category)
        self._change_own("forecast category", self.own_category, new, str(new), reason, meta)

    def _change_own(self, what: str, old: object, new: object, shown: str, reason: str, meta: Meta) -> None:
        self._require_open(f"change its {what}")
        if new == old:
            raise DomainError(f"deal's {what} is already " + ("its stage's default" if new is None else shown))
        event, name = ((self.ProbabilityChanged, "probability") if what == "probability"
                       else (self.ForecastCategoryChanged, "category"))
        self._record(event, meta, **{f"old_{name}": old, f"new_{name}": new}, reason=reason.strip())

    def win(self, meta: Meta, note: str = "") -> None:
        self._require_open("win it")
        self._record(self.Won, meta, from_stage=self.stage, note=note)

    def lose(self, reason: str | None, meta: Meta, competitor: str = "",
             vocabularies: Vocabularies = DEFAULT_VOCABULARIES) -> None:
        """A lost deal without a reason is still lost: its reason is then `unknown`."""
        self._require_open("lose it")
        self._record(self.Lost, meta, from_stage=self.stage, reason=vocabularies[LOSS_REASON].check(reason),
                     competitor=competitor.strip())

    def reopen(self, pipeline: Pipeline, reason: str, meta: Meta, stage: str | None = None) -> None:
        """Reopen a won or lost deal, in `stage` or else the stage it was closed from."""
        self._require_pipeline(pipeline)
        require_closed(self.status)
        to_stage = stage if stage is not None else self.stage
        pipeline.index(to_stage)
        self._record(self.Reopened, meta, stage=to_stage, reason=require_text(reason, "reopen reason"))
