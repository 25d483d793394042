"""The write side of the forecast read model: deal, pipeline, team and target events → versioned rows.

Each handler touches only its own record's rows (and a deal's only its customer's, which share its home
partition), so the partitioned consumers may apply partitions in any interleaving: what joins a deal to its
stage defaults, its owner's team, its customer's region and the targets happens in `queries`, as of T.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from domain.customer import Customer
from domain.deal import OPEN, Deal
from domain.pipeline import LOST, WON, Pipeline
from domain.targets import OwnerTeam, Target
from projections.forecast.rows import (DEAL, PIPELINE, TARGET, TEAM, CustomerRow, DealVersionRow, HeadRow,
                                       PipelineVersionRow, TargetVersionRow, TeamVersionRow)
from projections.read_model import ReadModel, Rows
from projections.tables import OPEN_SPAN, Table, cents, micros, span_class

HEADS = Table("forecast_heads", (("stream", "TEXT"), ("record_id", "TEXT"), ("seq", "INTEGER")),
              ("stream", "record_id"), row_type=HeadRow)
DEALS = Table(
    "forecast_deal_versions",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"),
     ("customer_id", "TEXT"), ("pipeline", "TEXT"), ("stage", "TEXT"), ("status", "TEXT"), ("owner", "TEXT"),
     ("amount_cents", "BIGINT"), ("currency", "TEXT"), ("expected_close", "TEXT"), ("probability", "INTEGER"),
     ("category", "TEXT"), ("won_at", "BIGINT"), ("span", "INTEGER")),
    # a period's forecast reads its won deals by won_at, its open ones by close date, the undated by span class
    ("deal_id", "seq"), indexes=(("valid_from",), ("status", "won_at"), ("status", "expected_close", "span", "valid_from")),
    row_type=DealVersionRow,
)
PIPELINES = Table(
    "forecast_pipeline_versions",
    (("pipeline_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"),
     ("pipeline", "TEXT"), ("stages", "TEXT")),
    ("pipeline_id", "seq"), row_type=PipelineVersionRow,
)
TEAMS = Table(
    "forecast_team_versions",
    (("membership_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"),
     ("owner", "TEXT"), ("team", "TEXT")),
    ("membership_id", "seq"), row_type=TeamVersionRow,
)
TARGETS = Table(
    "forecast_target_versions",
    (("target_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"), ("scope", "TEXT"),
     ("name", "TEXT"), ("period", "TEXT"), ("amount_cents", "BIGINT"), ("currency", "TEXT")),
    ("target_id", "seq"), row_type=TargetVersionRow,
)
CUSTOMERS = Table("forecast_customers", (("customer_id", "TEXT"), ("region", "TEXT")), ("customer_id",),
                  row_type=CustomerRow)
STREAMS = {DEAL: DEALS, PIPELINE: PIPELINES, TEAM: TEAMS, TARGET: TARGETS}


class ForecastReadModel(ReadModel):
    """Deals' standing, stage defaults, teams and targets in business time, for forecasts as of any instant."""

    name = "forecast"
    tables = (HEADS, DEALS, PIPELINES, TEAMS, TARGETS, CUSTOMERS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Deal.Opened: _deal_opened,
            Deal.StageChanged: _deal(lambda d, e: d._replace(stage=e.to_stage, probability=None, category=None)),
            Deal.AmountChanged: _deal(lambda d, e: d._replace(amount_cents=cents(e.new_amount))),
            Deal.OwnerChanged: _deal(lambda d, e: d._replace(owner=e.new_owner)),
            Deal.Won: _deal(lambda d, e: d._replace(status=WON, won_at=micros(e.occurred_at))),
            Deal.Lost: _deal(lambda d, e: d._replace(status=LOST, won_at=None)),
            Deal.Reopened: _deal(lambda d, e: d._replace(status=OPEN, stage=e.stage, won_at=None, probability=None,
                                                         category=None)),
            Deal.ExpectedCloseChanged: _deal(lambda d, e: d._replace(expected_close=e.new_close.isoformat())),
            Deal.ProbabilityChanged: _deal(lambda d, e: d._replace(probability=e.new_probability)),
            Deal.ForecastCategoryChanged: _deal(lambda d, e: d._replace(category=e.new_category)),
            Pipeline.Defined: _pipeline_defined,
            Pipeline.StageInserted: _pipeline(_insert_stage),
            Pipeline.StageForecastSet: _pipeline(_set_stage_forecast),
            OwnerTeam.Assigned: _team_assigned,
            OwnerTeam.Moved: _changed(TEAM, lambda t, e: t._replace(team=e.new_team)),
            Target.Set: _target_set,
            Target.Changed: _changed(TARGET, lambda t, e: t._replace(amount_cents=cents(e.amount), currency=e.currency)),
            Customer.Registered: _registered,
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """A batch's deals' heads, then their open versions: two reads, not one per event."""
        deals = {str(e.originator_id) for e in events if isinstance(e, Deal.Event) and not isinstance(e, Deal.Opened)}
        rows.prefetch(HEADS, [(DEAL, deal) for deal in deals])
        heads = [rows.get(HEADS, DEAL, deal) for deal in deals]
        rows.prefetch(DEALS, [(head.record_id, head.seq) for head in heads if head is not None])


# --- versions ------------------------------------------------------------------------------------


def _begin(rows: Rows, stream: str, event: Any, row_of: Callable[[Any], Any], first_from: int | None = None) -> None:
    """End the record's open version at the event and begin the one `row_of(previous)` gives (previous is
    None for a record's first event, which begins at `first_from` if given); seq and validity are set here."""
    record_id, table, at = str(event.originator_id), STREAMS[stream], micros(event.occurred_at)
    head: HeadRow | None = rows.get(HEADS, stream, record_id)
    previous = None if head is None else rows.get(table, record_id, head.seq)
    if previous is not None:
        ended = previous._replace(valid_to=at)
        rows.put(table, ended._replace(span=span_class(ended.valid_from, at)) if stream == DEAL else ended)
    begins = at if previous is not None or first_from is None else first_from
    begun = row_of(previous)._replace(seq=event.originator_version, valid_from=begins, valid_to=None)
    rows.put(table, begun._replace(span=OPEN_SPAN) if stream == DEAL else begun)
    rows.put(HEADS, HeadRow(stream, record_id, event.originator_version))


def _changed(stream: str, change: Callable[[Any, Any], Any]) -> Callable[[Any, Rows], None]:
    """A handler of an event that changes a record's open version: `change(previous, event)` → the new one."""
    def handle(event: Any, rows: Rows) -> None:
        def row_of(previous: Any) -> Any:
            assert previous is not None, f"{stream} {event.originator_id} changed before it began"
            return change(previous, event)
        _begin(rows, stream, event, row_of)
    return handle


def _deal(change: Callable[[DealVersionRow, Any], DealVersionRow]) -> Callable[[Any, Rows], None]:
    return _changed(DEAL, change)


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    close = None if event.expected_close is None else event.expected_close.isoformat()
    _begin(rows, DEAL, event, lambda _: DealVersionRow(
        str(event.originator_id), 0, 0, None, str(event.customer_id), event.pipeline, event.stage, OPEN, event.owner,
        cents(event.amount), event.currency, close, None, None, None))


def _pipeline_defined(event: Pipeline.Defined, rows: Rows) -> None:
    stages = [[stage["key"], None, None] for stage in event.stages]
    _begin(rows, PIPELINE, event, lambda _: PipelineVersionRow(str(event.originator_id), 0, 0, None, event.key,
                                                               _json(stages)), first_from=0)


def _pipeline(change: Callable[[list[list[Any]], Any], None]) -> Callable[[Any, Rows], None]:
    """A handler of a change to a pipeline's stages: `change` edits the stage list in place."""
    def new_version(previous: PipelineVersionRow, event: Any) -> PipelineVersionRow:
        stages = orjson.loads(previous.stages)
        change(stages, event)
        return previous._replace(stages=_json(stages))
    return _changed(PIPELINE, new_version)


def _insert_stage(stages: list[list[Any]], event: Pipeline.StageInserted) -> None:
    stages.insert(event.position, [event.stage, None, None])


def _set_stage_forecast(stages: list[list[Any]], event: Pipeline.StageForecastSet) -> None:
    for stage in stages:
        if stage[0] == event.stage:
            stage[1:] = [event.probability, event.forecast_category]


def _team_assigned(event: OwnerTeam.Assigned, rows: Rows) -> None:
    _begin(rows, TEAM, event, lambda _: TeamVersionRow(str(event.originator_id), 0, 0, None, event.owner, event.team))


def _target_set(event: Target.Set, rows: Rows) -> None:
    _begin(rows, TARGET, event, lambda _: TargetVersionRow(
        str(event.originator_id), 0, 0, None, event.scope, event.name, event.period, cents(event.amount),
        event.currency))


def _registered(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, CustomerRow(str(event.originator_id), event.region))


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
