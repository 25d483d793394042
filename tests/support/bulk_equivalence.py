"""Handlers vs bulk rebuild (services/bulk): the same log rebuilt both ways, every table diffed row for row.

The random histories of `tests.support.equivalence` are extended with what they lack for the funnel's rules:
stages inserted into the sales pipeline while deals move (and deals moved into them), and the standard
pipelines defined only after leads and tickets already entered them (their default stages count until then).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson

from domain.base import Meta
from domain.deal import Deal
from domain.errors import DomainError
from domain.pipeline import Pipeline
from projections.read_model import ReadModel
from services.application import CrmApplication
from services.bulk.duckdb_rebuild import bulk_build
from services.commands import ChangeStage
from services.commands.pipelines import InsertStage
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import apply_history

Snapshot = dict[str, set[tuple[Any, ...]]]
INSERTED = (("review", "needs_analysis"), ("pilot", "lead"), ("legal", "negotiation"))  # (stage, after): deals open in the first


def snapshot(store: ReadModelStore, models: Sequence[ReadModel]) -> Snapshot:
    """Every row of the models' tables, JSON columns parsed (key order is no difference), but those no query
    reads (`Table.ignored_rows`: the segments' superseded intervals, which depend on how the handlers' batches fell)."""
    tables: Snapshot = {}
    for table in (t for model in models for t in model.tables):
        json_at = {table.column_names.index(name) for name in table.json_columns}
        kept = f" WHERE NOT ({table.ignored_rows})" if table.ignored_rows else ""  # rows no query reads
        tables[table.name] = {
            tuple(orjson.dumps(orjson.loads(v), option=orjson.OPT_SORT_KEYS) if i in json_at and v is not None else v
                  for i, v in enumerate(row))
            for row in store.query(f"SELECT {', '.join(table.column_names)} FROM {table.name}{kept}")}
    return tables


def differences(handlers: Snapshot, bulk: Snapshot) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per table with a difference: (rows only the handlers wrote, rows only the bulk path wrote), a few."""
    return {name: (sorted(rows - bulk[name], key=str)[:5], sorted(bulk[name] - rows, key=str)[:5])
            for name, rows in handlers.items() if rows != bulk[name]}


def assert_bulk_equals_handlers(app: CrmApplication, store: ReadModelStore, models: Sequence[ReadModel]) -> Snapshot:
    """Rebuild `models` by their handlers, then in bulk, on the same store: the same rows, the same position."""
    Projector(app, store, models).rebuild()
    by_handlers = snapshot(store, models)
    position = bulk_build(app, store, [m.name for m in models])
    by_bulk = snapshot(store, models)
    assert not differences(by_handlers, by_bulk), differences(by_handlers, by_bulk)
    assert position == app.event_count()
    return by_bulk


class FunnelRules:
    """The `on_sync` of a random history: at each sync point, one of the funnel's rules the histories lack."""

    def __init__(self, app: CrmApplication, pipelines_first: bool) -> None:
        self.app = app
        self.syncs = 0
        self.defined = pipelines_first
        self.inserted: list[str] = []

    def __call__(self) -> None:
        self.syncs += 1
        meta = Meta(occurred_at=T0 + timedelta(days=30 + self.syncs * 7), actor="李娜")
        if not self.defined:
            self.app.ensure_default_pipelines(meta)
            self.defined = True
        elif len(self.inserted) < len(INSERTED) and self.syncs % 2 == 0:
            stage, after = INSERTED[len(self.inserted)]
            command = InsertStage("sales", stage, stage.title(), after)
            last = self.app.get(Pipeline, command.aggregate_id).last_occurred_at  # a stage's forecast setting of
            self.app.insert_stage(command, Meta(max(meta.occurred_at, last), meta.actor))  # the history may be later
            self.inserted.append(stage)
        elif self.inserted:
            self._move_a_deal(meta)

    def _move_a_deal(self, meta: Meta) -> None:
        deals = [event.originator_id for _, event in self.app.read_log(topics=["domain.deal:Deal.Opened"])]
        if deals:
            deal: UUID = deals[self.syncs % len(deals)]
            back = self.app.get(Deal, deal).stage
            try:
                self.app.change_stage(ChangeStage(deal, self.inserted[self.syncs % len(self.inserted)], "评审"), meta)
            except DomainError:
                return  # a closed deal
            # back where it was (the histories advance deals through the standard stages only), its furthest
            # stage maybe the inserted one
            self.app.change_stage(ChangeStage(deal, back, "退回"), Meta(meta.occurred_at + timedelta(days=1), "李娜"))


def run_history(app: CrmApplication, ops: list[tuple[str, int, int, bool]], pipelines_first: bool) -> None:
    """A random history with the funnel's extra rules at its sync points (see `FunnelRules`)."""
    rules = FunnelRules(app, pipelines_first)
    if pipelines_first:
        app.ensure_default_pipelines(Meta(occurred_at=T0 - timedelta(days=30), actor="setup"))
    apply_history(app, ops, on_sync=rules)
