"""Review A (issue 16), P1-1: a customer's second announcement of the same (old tier, new tier, changed_at) was
swallowed as "announced before" — the derived id did not name which announcement of the chain it is (now it
derives from the count of the customer's announcements before it, `domain.segment_change_rules.change_id`) — and
a batch refused whole made the process look again at once, forever.

A deal entered late (occurred_at in the past, an ordinary use of the API) rewrites the segments timeline so that
the run of `potential` starts again at the instant already announced once: the id of the due change equals that
of an earlier, different announcement, the log refuses it, `_save_one` counts it as done, and downstream tools are
left believing the customer is `ordinary` while every look tries again forever.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.segment_change_rules import SegmentChange, TierChange
from projections.segment_changes import SegmentChangeQueries
from services.application import ConcurrencyConflict
from services.commands import LoseDeal, OpenDeal
from services.segment_process import SegmentChangeProcess
from tests.conftest import T0, at
from tests.unit.services import test_segment_process as base
from tests.unit.services.test_segment_process import _changes, _customer, _started, _steps_at

log = base.log  # the fixture: a SQLite log with the default pipelines, and its read store


def test_a_late_entered_deal_brings_back_an_announced_change_and_it_is_never_announced(log):
    crm, store = log
    customer = _customer(crm)  # registered at(0): ordinary
    clock, process = _started(log, 0.5)
    first = crm.open_deal(OpenDeal(customer, "云服务采购", "10000", owner="李娜"), at(1))  # open deal: potential
    _steps_at(T0 + timedelta(days=1.5), clock, process)
    crm.lose_deal(LoseDeal(first, "价格"), at(2))  # no open deal, no purchase: ordinary
    _steps_at(T0 + timedelta(days=3), clock, process)
    assert [c[1:3] for c in _changes(crm)] == [("", "ordinary"), ("ordinary", "potential"), ("potential", "ordinary")]
    # A second deal, opened on day 1.5 and entered today: the customer has had an open deal without a break
    # since day 1, so they are potential now, since day 1.
    crm.open_deal(OpenDeal(customer, "二期", "10000", owner="李娜"), at(1.5))
    _steps_at(T0 + timedelta(days=4), clock, process)
    _steps_at(T0 + timedelta(days=5), clock, process)
    assert SegmentChangeQueries(store).due(clock.now) == []  # failed: the change stayed due, refused each look
    assert SegmentChangeQueries(store).announced(customer) == "potential"  # failed: still "ordinary" downstream
    assert [c[1:] for c in _changes(crm)][3:] == [("ordinary", "potential", T0 + timedelta(days=1))]


def test_a_full_batch_refused_whole_is_not_looked_at_again_at_once(log, monkeypatch):
    """Were the log to refuse every change of a full batch (ids in it already, its read model not seeing them), the
    process would look again at once, refuse again, …: a spin that announces nobody else. It waits instead."""
    crm, store = log
    _customer(crm)
    process = SegmentChangeProcess(crm, store, lambda: T0 + timedelta(days=0.5), batch=1, look_gap=3600)

    def refused(*aggregates):
        raise ConcurrencyConflict("in the log already")

    monkeypatch.setattr(crm, "save_new", refused)
    looks = []
    due = process.queries.due
    monkeypatch.setattr(process.queries, "due", lambda *args: looks.append(1) or due(*args))
    for _ in range(5):
        process.run_step()
    assert len(looks) == 1


def test_another_tier_for_a_link_already_recorded_is_refused_so_the_chain_cannot_fork(log):
    """A second process (another machine: the lock file is per host) or one whose read model is further behind
    may find another tier due for the same link; the id names the link alone, so the log refuses it — with the
    tiers in the id both were recorded, two announcements number 0, and `crm import` refused such a log."""
    crm, _ = log
    customer = _customer(crm)
    crm.save_new(SegmentChange.record(TierChange(customer, "", "ordinary", T0, 0), at(0.5, "crm segments")))
    with pytest.raises(ConcurrencyConflict):
        crm.save_new(SegmentChange.record(TierChange(customer, "", "potential", T0, 0), at(0.6, "crm segments")))
    assert [c[1:3] for c in _changes(crm)] == [("", "ordinary")]
