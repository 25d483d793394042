"""`crm import`'s checks of a deal's events: open or closed as `domain.deal`'s rules require, stages known in
the deal's pipeline (as it stands at that line of the file or in the log), the stage it left is the one it
was in, and the customer, lead and campaign it names exist."""

from __future__ import annotations

import sys
from collections.abc import Callable

from domain import deal as deal_rules
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import LOST, WON, Pipeline, stage_index
from services.history.rules.facts import pipeline_key
from services.history.rules.lifecycle import Engine, Rule, require_same
from services.history.rules.tracked import Tracked


def _stage(rules: Engine, field: str, pipeline: str, stage: str, pipeline_field: str = "") -> None:
    """`stage` must be an open stage of pipeline `pipeline` (defined in the file or the log)."""
    def known_stage(tracked: Tracked) -> None:
        stage_index(pipeline, tracked.stages, stage)
    rules.refer(pipeline_field or field, Pipeline, pipeline_key(pipeline), known_stage,
                target=repr(pipeline), check_field=field)


def _opened(rules: Engine, deal: Tracked, pipeline: str, stage: str, customer_id: int,
            lead_id: int | None, campaign_id: int | None, external_id: str) -> None:
    _stage(rules, "stage", pipeline, stage, pipeline_field="pipeline")
    rules.claim(Deal, external_id)
    rules.refer("customer_id", Customer, customer_id)
    rules.refer("lead_id", Lead, lead_id)
    rules.refer("campaign_id", Campaign, campaign_id)
    deal.status, deal.stage, deal.pipeline = deal_rules.OPEN, sys.intern(stage), sys.intern(pipeline)


def _stage_changed(rules: Engine, deal: Tracked, from_stage: str, to_stage: str) -> None:
    deal_rules.require_open(deal.status, "change its stage")
    _stage(rules, "to_stage", deal.pipeline, to_stage)
    deal_rules.require_new_stage(deal.stage, to_stage)
    require_same("from_stage", from_stage, deal.stage, "deal's stage")
    deal.stage = sys.intern(to_stage)


def _amount_changed(rules: Engine, deal: Tracked) -> None:
    deal_rules.require_open(deal.status, "change its amount")


def _closed(action: str, status: str) -> Callable[..., None]:
    def close(rules: Engine, deal: Tracked, from_stage: str) -> None:
        deal_rules.require_open(deal.status, action)
        require_same("from_stage", from_stage, deal.stage, "deal's stage")
        deal.status = status
    return close


def _reopened(rules: Engine, deal: Tracked, stage: str) -> None:
    deal_rules.require_closed(deal.status)
    _stage(rules, "stage", deal.pipeline, stage)
    deal.status, deal.stage = deal_rules.OPEN, sys.intern(stage)


def _forecast_changed(action: str) -> Rule:
    def change(rules: Engine, deal: Tracked) -> None:
        deal_rules.require_open(deal.status, action)
    return change


RULES: dict[type, Rule] = {
    Deal.ExpectedCloseChanged: _forecast_changed("change its expected close date"),
    Deal.ProbabilityChanged: _forecast_changed("change its probability"),
    Deal.ForecastCategoryChanged: _forecast_changed("change its forecast category"),
    Deal.Opened: _opened,
    Deal.StageChanged: _stage_changed,
    Deal.AmountChanged: _amount_changed,
    Deal.Won: _closed("win it", WON),
    Deal.Lost: _closed("lose it", LOST),
    Deal.Reopened: _reopened,
}
