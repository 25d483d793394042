"""Shape `stage_history`: one row per change of an opportunity, rows of all opportunities mixed, any order.

Two Salesforce exports have this shape. OpportunityHistory (OpportunityId, StageName, Amount, CloseDate,
CreatedDate, CreatedById) holds a snapshot per change: each row after the first moves the deal to its
stage and changes its amount if it differs. OpportunityFieldHistory (OpportunityId, Field, OldValue,
NewValue, CreatedDate) holds one changed field per row — map its `field`, `old_value` and `new_value`
columns: Field "StageName" moves the deal, "Amount" changes its amount, "Owner"/"OwnerId" its owner; the
"created" row (and other fields) add nothing but the opening instant.

Rows are grouped by opportunity and sorted by their instant (ties: file order). The first opens the deal
(in its stage, or the old value of its first stage change), each later one is one step; one refused row
refuses the whole opportunity, its other rows naming it. Neither export says which account the deal
belongs to or its name: map `account` (and `name`, `owner`, `currency`) to columns of this file, or name
the Opportunity export in `[files.details]` (`path` and `columns`: id, name, account, account_name, owner,
currency, loss_reason, stage, close_date, amount).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import DomainError
from domain.pipeline import TERMINAL_STAGES, Pipeline
from services.history.csv_import.csv_rows import Cells, FileRefused, Row, RowRefused, read_rows
from services.history.csv_import.deal_steps import DealSteps, deal_customer, open_deal
from services.history.csv_import.import_session import Session, at_or_after, at_row
from services.history.csv_import.mapping import FileSpec

REQUIRED = ("id", "created")
ROLES = ("id", "stage", "amount", "close_date", "created", "actor", "field", "old_value", "new_value", "name",
         "account", "account_name", "owner", "currency", "loss_reason")
DETAIL_ROLES = ("id", "name", "account", "account_name", "owner", "currency", "loss_reason", "stage", "close_date",
                "amount")
STAGE_FIELDS, AMOUNT_FIELDS, OWNER_FIELDS = {"stagename", "stage"}, {"amount"}, {"owner", "ownerid"}


def import_history_rows(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    pipeline = session.pipeline(spec.pipeline or "")
    details = _details(session, spec)
    groups: dict[str, list[Row]] = {}
    for row in rows:
        external_id = Cells(session.mapping, spec, row).text("id")
        if not external_id:
            session.refuse([row], row, spec.columns.get("id", "id"), "is empty", None)
            continue
        groups.setdefault(external_id, []).append(row)
    for external_id, group in groups.items():
        detail = details.get(external_id)
        session.attempt("deal", external_id, group,
                        lambda deal_id, group=group, detail=detail: _deal(session, pipeline, spec, group, detail,
                                                                          deal_id))


def _details(session: Session, spec: FileSpec) -> dict[str, Cells]:
    """The opportunities file named in `[files.details]`, by id."""
    raw = spec.options.get("details")
    if not raw:
        return {}
    if not isinstance(raw, dict) or "path" not in raw:
        raise FileRefused(f"{spec.path}: [files.details] needs path = the opportunities export and its columns")
    detail_spec = FileSpec(spec.path.parent / raw["path"], "opportunities", dict(raw.get("columns", {})))
    unknown = sorted(detail_spec.columns.keys() - set(DETAIL_ROLES))
    if unknown:
        raise FileRefused(f"{detail_spec.path}: unknown role(s) {', '.join(unknown)} in [files.details.columns]")
    _, rows = read_rows(detail_spec, ("id",))
    cells = [Cells(session.mapping, detail_spec, row) for row in rows]
    return {c.text("id"): c for c in cells if c.text("id")}


def _deal(session: Session, pipeline: Pipeline, spec: FileSpec, group: list[Row], detail: Cells | None,
          deal_id: UUID) -> Iterator[CrmAggregate]:
    timed = sorted(((_at(session, spec, row), row) for row in group), key=lambda pair: (pair[0], pair[1].line))
    first_cells = Cells(session.mapping, spec, timed[0][1])
    fields = "field" in spec.columns

    def value(role: str) -> str:
        return (detail.text(role) if detail is not None else "") or first_cells.text(role)

    source = detail if detail is not None and detail.text("account") else first_cells
    opened_at = timed[0][0]
    customer_id, made = deal_customer(session, source, opened_at)
    yield from made
    stage, amount = _opening(session, pipeline, spec, timed, detail, fields)
    deal = open_deal(session, pipeline, deal_id, first_cells.required("id"), customer_id, {
        "title": value("name") or first_cells.required("id"), "amount": amount,
        "currency": (detail if detail is not None and detail.text("currency") else first_cells).currency(),
        "owner": value("owner") or session.mapping.defaults["owner"], "stage": stage,
    }, opened_at, first_cells.text("actor"))
    steps = DealSteps(session, pipeline, deal, value("loss_reason") or session.mapping.defaults["loss_reason"])
    for index, (at, row) in enumerate(timed):
        try:
            _step(session, pipeline, spec, steps, row, at, fields, first=index == 0)
        except (RowRefused, DomainError) as error:
            raise at_row(error, row) from None
    if detail is not None and not any(_changes_stage(session, spec, row, fields) for _, row in timed):
        _close_from_details(session, pipeline, steps, detail)
    yield deal


def _at(session: Session, spec: FileSpec, row: Row) -> datetime:
    try:
        return Cells(session.mapping, spec, row).required_instant("created").at
    except RowRefused as error:
        raise at_row(error, row) from None


def _opening(session: Session, pipeline: Pipeline, spec: FileSpec, timed: list[tuple[datetime, Row]],
             detail: Cells | None, fields: bool) -> tuple[str, object]:
    """The stage and amount the deal was opened with."""
    mapping = session.mapping
    first = Cells(mapping, spec, timed[0][1])
    if not fields:
        stage = mapping.stage_for(pipeline.key, first.required("stage"))
        return (stage if stage not in TERMINAL_STAGES else pipeline.stage_keys[0]), first.amount("amount")
    stage_rows = [Cells(mapping, spec, row) for _, row in timed if _field(session, spec, row) in STAGE_FIELDS]
    amount_rows = [Cells(mapping, spec, row) for _, row in timed if _field(session, spec, row) in AMOUNT_FIELDS]
    old_stage = stage_rows[0].text("old_value") if stage_rows else (detail.text("stage") if detail else "")
    stage = mapping.stage_for(pipeline.key, old_stage) if old_stage else pipeline.stage_keys[0]
    if stage in TERMINAL_STAGES:
        stage = pipeline.stage_keys[0]
    amount = amount_rows[0].amount("old_value") if amount_rows else (detail.amount("amount") if detail else 0)
    return stage, amount


def _field(session: Session, spec: FileSpec, row: Row) -> str:
    return Cells(session.mapping, spec, row).text("field").casefold()


def _changes_stage(session: Session, spec: FileSpec, row: Row, fields: bool) -> bool:
    return _field(session, spec, row) in STAGE_FIELDS if fields else True


def _step(session: Session, pipeline: Pipeline, spec: FileSpec, steps: DealSteps, row: Row, at: datetime,
          fields: bool, first: bool) -> None:
    cells = Cells(session.mapping, spec, row)
    actor = cells.text("actor")
    if not fields:  # the amount changes while open: before a close, after a reopening
        stage = session.mapping.stage_for(pipeline.key, cells.required("stage"))
        if not steps.deal.is_open:
            steps.move(stage, at, actor)
        if not first and cells.text("amount"):
            steps.amount(cells.amount("amount"), at, actor)
        steps.move(stage, at, actor)
        return
    name = cells.text("field").casefold()
    if name in STAGE_FIELDS:
        steps.move(session.mapping.stage_for(pipeline.key, cells.required("new_value")), at, actor)
    elif name in AMOUNT_FIELDS:
        steps.amount(cells.amount("new_value"), at, actor)
    elif name in OWNER_FIELDS:
        steps.owner(cells.text("new_value"), at, actor)


def _close_from_details(session: Session, pipeline: Pipeline, steps: DealSteps, detail: Cells) -> None:
    """No stage change in the history: the opportunity's current stage, closed at its close date."""
    stage = detail.text("stage")
    if not stage:
        return
    target = session.mapping.stage_for(pipeline.key, stage)
    close = detail.instant("close_date")
    at = steps.last if close is None else at_or_after(close, steps.last, session.mapping.timezone)
    if at < steps.last:
        raise RowRefused(detail.column("close_date"), "closed before the deal's last change")
    steps.move(target, at)
