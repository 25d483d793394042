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
currency, loss_reason, stage, close_date, amount, created, closed, won). Its rows count under "rows read"; an
id twice in it is refused (the second row, naming the first), never resolved silently. An opportunity of the
details with no history row (an export cut at a date, or one never edited) is imported from its details row
alone, as the `opportunities` shape does (opened at `created` in its stage, won or lost by closed/won at
`close_date`) when `created` is mapped; otherwise its row is refused, saying so: it is never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import DomainError
from domain.pipeline import TERMINAL_STAGES, Pipeline
from services.history.csv_import import shape_opportunities
from services.history.csv_import.csv_rows import Cells, FileRefused, Row, RowRefused, read_rows
from services.history.csv_import.deal_steps import DealSteps, deal_customer, open_deal
from services.history.csv_import.import_session import Session, at_or_after, at_row, set_properties
from services.history.csv_import.mapping import FileSpec

REQUIRED = ("id", "created")
ROLES = ("id", "stage", "amount", "close_date", "created", "actor", "field", "old_value", "new_value", "name",
         "account", "account_name", "owner", "currency", "loss_reason")
DETAIL_ROLES = ("id", "name", "account", "account_name", "owner", "currency", "loss_reason", "stage", "close_date",
                "amount", "created", "closed", "won")
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
        built = session.attempt("deal", external_id, group,
                                lambda deal_id, group=group, detail=detail: _deal(session, pipeline, spec, group,
                                                                                  detail, deal_id),
                                row_at=lambda at, group=group: _row_at(session, spec, group, at))
        if built and detail is not None:  # its details row is counted unchanged with it
            session.companions[session.record_of("deal", external_id)] = [detail.row]
    for external_id, detail in details.items():
        if external_id not in groups:
            _from_details_alone(session, pipeline, spec, detail)


def _from_details_alone(session: Session, pipeline: Pipeline, spec: FileSpec, detail: Cells) -> None:
    """An opportunity with no history row: from its details row as the `opportunities` shape reads it, or
    refused when the details name no `created` column."""
    if "created" not in detail.spec.columns:
        session.refuse([detail.row], detail.row, detail.column("id"),
                       f"opportunity {detail.text('id')!r} has no row in {spec.name}; map created (e.g. CreatedDate) in "
                       "[files.details.columns] to import it from this row alone", None)
        return
    session.attempt("deal", detail.text("id"), [detail.row],
                    lambda deal_id: shape_opportunities.deal_of_row(session, pipeline, detail, {}, deal_id))


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
    session.detail_rows[detail_spec.name] = session.detail_rows.get(detail_spec.name, 0) + len(rows)
    details: dict[str, Cells] = {}
    for row in session.well_formed(rows):
        cells = Cells(session.mapping, detail_spec, row)
        external_id = cells.text("id")
        if not external_id:
            session.refuse([row], row, cells.column("id"), "is empty", None)
        elif external_id in details:
            session.refuse([row], row, cells.column("id"), f"duplicate id {external_id!r} (first at "
                                                           f"{detail_spec.name} line {details[external_id].row.line})",
                           None)
        else:
            details[external_id] = cells
    return details


def _row_at(session: Session, spec: FileSpec, group: list[Row], at: datetime) -> Row:
    """The row an event at `at` comes from: the last row at or before it (else the first)."""
    timed = sorted(((_at(session, spec, row), row.line, row) for row in group), key=lambda t: t[:2])
    return next((row for when, _, row in reversed(timed) if when <= at), timed[0][2])


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
    set_properties(session, deal, {**first_cells.properties(spec.properties),
                                   **(detail.properties(spec.properties) if detail is not None else {})}, opened_at)
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
