"""The rows of the forecast read model, one named type per table, fields in the table's column order.

Every fact the forecast needs changes over time, so each is kept as versions `[valid_from, valid_to)` in
business time (valid_to None while it lasts), keyed by the record's id and the event that began the version:
a deal's standing, a pipeline's stages with their forecast defaults, an owner's team, a target's amount. A
forecast as of T reads the versions in force at T and nothing else. `HeadRow` points at each record's open
version, so that the next event closes it without a scan. Instants are µs since the epoch, money cents.
"""

from __future__ import annotations

from typing import NamedTuple

from projections.tables import OPEN_SPAN

DEAL, PIPELINE, TEAM, TARGET = "deal", "pipeline", "team", "target"  # `HeadRow.stream`


class HeadRow(NamedTuple):
    """The open version of a record (`stream`: deal, pipeline, team or target)."""

    stream: str
    record_id: str
    seq: int


class DealVersionRow(NamedTuple):
    """A deal as it stood during `[valid_from, valid_to)`: what places it in a period and a category."""

    deal_id: str
    seq: int
    valid_from: int
    valid_to: int | None
    customer_id: str
    pipeline: str
    stage: str
    status: str  # open, won or lost
    owner: str
    amount_cents: int
    currency: str
    expected_close: str | None  # ISO date, as the deal says
    probability: int | None  # set on the deal itself; None: its stage's default
    category: str | None
    won_at: int | None  # while won
    span: int = OPEN_SPAN  # projections.tables.span_class(valid_from, valid_to): how a query finds it in force


class PipelineVersionRow(NamedTuple):
    """A pipeline's open stages with their forecast defaults during `[valid_from, valid_to)`: `stages` is JSON,
    `[[key, probability or null, category or null], …]` in order (null: by the stage's position). The first
    version's valid_from is 0 (1970): a pipeline's first definition stands for all of history before it
    too, as deals imported after an installation defined its pipelines began long before that."""

    pipeline_id: str
    seq: int
    valid_from: int
    valid_to: int | None
    pipeline: str  # its key
    stages: str


class TeamVersionRow(NamedTuple):
    """An owner's team during `[valid_from, valid_to)` (`domain.targets.OwnerTeam`)."""

    membership_id: str
    seq: int
    valid_from: int
    valid_to: int | None
    owner: str
    team: str  # "": none


class TargetVersionRow(NamedTuple):
    target_id: str
    seq: int
    valid_from: int
    valid_to: int | None
    scope: str  # owner or team
    name: str
    period: str  # a month or quarter label (`2026-03`, `2026-Q1`)
    amount_cents: int
    currency: str


class CustomerRow(NamedTuple):
    """A customer's region, fixed at registration (`Customer.Registered`)."""

    customer_id: str
    region: str
