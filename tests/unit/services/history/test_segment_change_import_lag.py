"""A log `crm segments run` itself writes must import (second review of 2026-11-30, P2): a process whose view lags
a forgetting announces an ageing after it, then the leaving. It failed while `crm import` refused any tier
entered after a forgetting (services/history/rules/segment_change_lifecycle.py), with the refusal below."""

from __future__ import annotations

from datetime import timedelta

from domain.base import Meta
from domain.segment_change_rules import SegmentChange
from projections.segment_changes import SegmentChangeQueries, SegmentChangesReadModel
from projections.segments import SegmentsReadModel
from services.commands import ForgetCustomer, OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.projector import Projector
from services.segment_process import SegmentChangeProcess
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.edited_history import import_edited, sqlite_app

MICRO = timedelta(microseconds=1)


def _chain(app) -> list[tuple[int, str, str]]:
    return [(e.sequence, e.old_tier, e.new_tier) for _, e in app.read_log() if isinstance(e, SegmentChange.Recorded)]


def test_an_ageing_decided_before_the_process_saw_a_forgetting_imports(tmp_path) -> None:
    """Was: ImportRefused "customer … was forgotten: it can only be announced leaving every tier, not entering
    'potential' after its forgetting".

    The process decides on its read models as they stood at its last catch-up (or as `crm serve`'s follower
    left them, beside it): a forgetting committed 50 ms before an ageing instant and not yet applied when the
    process wakes for that instant makes it record the ageing (changed_at after the forgetting), then the
    leaving. Both are the system's own records, published on crm.segments; the import refuses the first."""
    source = sqlite_app(tmp_path / "source.db")
    source.ensure_default_pipelines(at(-30, "setup"))
    customer = source.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="杭州云启"), at(0))
    deal = source.open_deal(OpenDeal(customer, "云服务采购", "200000", owner="李娜"), at(1))
    source.win_deal(WinDeal(deal, "签约"), at(2))  # high value; 90 days after the purchase (+1 µs): potential
    ageing = T0 + timedelta(days=92) + MICRO
    SegmentChangeProcess(source, ReadModelStore(source.database), lambda: T0 + timedelta(days=3)).run_step()
    assert _chain(source) == [(0, "", "high_value")]

    behind = ReadModelStore(database_from_url("memory://"))  # the process's view, caught up before the forgetting
    Projector(source, behind, [SegmentsReadModel(), SegmentChangesReadModel()]).catch_up()
    source.forget_customer(ForgetCustomer(customer), Meta(occurred_at=ageing - timedelta(milliseconds=50),
                                                          actor="李娜"))
    woken = ageing + timedelta(milliseconds=1)  # the process waits for the ageing's exact instant
    due = SegmentChangeQueries(behind).due(woken)
    assert [(c.old_tier, c.new_tier, c.changed_at) for c in due] == [("high_value", "potential", ageing)]
    SegmentChangeProcess(source, behind, lambda: woken)._save(due, woken)  # `run_step`'s recording
    SegmentChangeProcess(source, ReadModelStore(source.database), lambda: woken + timedelta(seconds=1)).run_step()
    assert _chain(source) == [(0, "", "high_value"), (1, "high_value", "potential"), (2, "potential", "")]

    target = import_edited(source, tmp_path, lambda line: None)
    assert _chain(target) == _chain(source)
