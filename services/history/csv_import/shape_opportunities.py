"""Shape `opportunities`: one row per opportunity, with the date it entered each stage.

As HubSpot exports deals: "Record ID", "Deal Name", "Deal Stage", "Amount", "Create Date", "Close Date",
"Deal owner", the associated company, and per stage `Date entered "<Stage> (<Pipeline>)"` (internally
`hs_v2_date_entered_<stageid>`); Salesforce's Opportunity object has no stage dates, only its current
StageName, CloseDate, IsClosed and IsWon. The mapping names the stage-date columns one by one
(`[files.stage_entered]`: source stage name = column) or by a pattern (`stage_entered_pattern =
"hs_v2_date_entered_{stage}"`, `{stage}` being each source stage name of the pipeline's `[stages]`).

A row becomes Deal.Opened at its creation, in the first stage it entered (else its current stage, else the
pipeline's first), a StageChanged at each later stage's entered date in time order, then Won or Lost: at the
won/lost stage's entered date, else at the close date, when its current stage (or IsClosed/IsWon) says it
closed. An open deal's close date is its expected close. Date-exited columns add nothing the next stage's
entered date does not say, so they are not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from domain.base import CrmAggregate
from domain.pipeline import LOST, TERMINAL_STAGES, WON, Pipeline
from services.history.csv_import.csv_rows import Cells, FileRefused, Row, RowRefused, parse_instant
from services.history.csv_import.deal_steps import DealSteps, deal_customer, open_deal
from services.history.csv_import.import_session import Session, at_or_after, set_properties
from services.history.csv_import.mapping import FileSpec

REQUIRED = ("id", "account", "created")
ROLES = ("id", "name", "account", "account_name", "amount", "currency", "owner", "stage", "created", "close_date",
         "closed", "won", "loss_reason")


def entered_columns(session: Session, spec: FileSpec, header: list[str]) -> dict[str, str]:
    """Column → source stage name, for every stage-entered column of the file."""
    columns = {column: name for name, column in spec.options.get("stage_entered", {}).items()}
    pattern = spec.options.get("stage_entered_pattern")
    if pattern:
        for name in session.mapping.stage_names[spec.pipeline or ""]:
            column = pattern.replace("{stage}", name)
            if column in header:
                columns.setdefault(column, name)
    missing = [column for column in columns if column not in header]
    if missing:
        raise FileRefused(f"{spec.path}, line 1: missing required column {missing[0]!r} (named in "
                          "[files.stage_entered])")
    return columns


def import_opportunities(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    pipeline = session.pipeline(spec.pipeline or "")
    entered = entered_columns(session, spec, header)
    session.each_row(spec, rows, "deal", lambda cells, deal_id: deal_of_row(session, pipeline, cells, entered, deal_id))


def deal_of_row(session: Session, pipeline: Pipeline, cells: Cells, entered: dict[str, str], deal_id: UUID
                ) -> Iterator[CrmAggregate]:
    """One opportunity row's deal (also an opportunity of `stage_history`'s details with no history row)."""
    mapping = session.mapping
    steps_at = _entered(session, pipeline, cells, entered)
    created = cells.required_instant("created").at
    opened_at = min([created, *(at for at, _ in steps_at[:1])])
    current = mapping.stage_for(pipeline.key, cells.text("stage")) if cells.text("stage") else ""
    first = next((stage for _, stage in steps_at if stage not in TERMINAL_STAGES), None) \
        or (current if current and current not in TERMINAL_STAGES else pipeline.stage_keys[0])
    customer_id, made = deal_customer(session, cells, opened_at)
    yield from made
    deal = open_deal(session, pipeline, deal_id, cells.required("id"), customer_id, {
        "title": cells.text("name") or cells.required("id"), "amount": cells.amount("amount"),
        "currency": cells.currency(), "owner": cells.text("owner") or mapping.defaults["owner"], "stage": first,
        "expected_close": cells.day("close_date") if current not in TERMINAL_STAGES else None,
    }, opened_at)
    set_properties(session, deal, cells.properties(), opened_at)
    steps = DealSteps(session, pipeline, deal, cells.text("loss_reason") or mapping.defaults["loss_reason"])
    for at, stage in steps_at:
        steps.move(stage, at)
    _close(session, cells, steps, current)
    yield deal


def _entered(session: Session, pipeline: Pipeline, cells: Cells, entered: dict[str, str]
             ) -> list[tuple[datetime, str]]:
    """(instant, stage key or won/lost) of every stage-entered cell, in time order (ties: pipeline order)."""
    found = []
    for column, name in entered.items():
        text = cells.row.values.get(column, "").strip()
        if text:
            stage = session.mapping.stage_for(pipeline.key, name)
            found.append((parse_instant(session.mapping, text, column).at, _order(pipeline, stage), stage))
    return [(at, stage) for at, _, stage in sorted(found)]


def _order(pipeline: Pipeline, stage: str) -> int:
    return len(pipeline.stage_keys) + TERMINAL_STAGES.index(stage) if stage in TERMINAL_STAGES \
        else pipeline.index(stage)


def _close(session: Session, cells: Cells, steps: DealSteps, current: str) -> None:
    """Won or lost at the close date, when the current stage or the IsClosed/IsWon columns say so; an open
    current stage the entered dates did not reach is moved to at the latest known instant."""
    outcome = current if current in TERMINAL_STAGES else ""
    if cells.text("closed") and cells.flag("closed"):
        outcome = WON if cells.text("won") and cells.flag("won") else (outcome or LOST)
    if outcome:
        if steps.deal.status != outcome:
            close = cells.instant("close_date")
            at = steps.last if close is None else at_or_after(close, steps.last, session.mapping.timezone)
            if at < steps.last:
                raise RowRefused(cells.column("close_date"), f"closed ({at.isoformat()}) before the deal's last "
                                                             f"event ({steps.last.isoformat()})")
            steps.move(outcome, at)
    elif current and steps.deal.is_open and current != steps.deal.stage:
        steps.move(current, steps.last)
