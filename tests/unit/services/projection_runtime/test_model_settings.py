"""The funnel's time zone is part of its fingerprint: UTC keeps the fingerprint funnels had before zones (no
rebuild on upgrade); another CRM_TIME_ZONE is another fingerprint, so its tables are rebuilt (online by `crm
serve`), queries refuse them meanwhile rather than read UTC days as Shanghai's, and a follower refuses to
feed them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from domain.base import Meta
from domain.periods import day_number, zone_named
from projections.funnel import FunnelReadModel
from projections.segments import SegmentsReadModel
from projections.tables import from_micros
from services.application import CrmApplication
from services.commands import CaptureLead
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.funnel_as_of import funnel_queries, stages_of
from services.projection_runtime.model_settings import configured
from services.projection_runtime.online_rebuild import rebuild_online
from services.projection_runtime.projector import FeederConflict, schema_fingerprint
from services.projection_runtime.registry import READ_MODELS, projector_for
from services.projection_runtime.schema_change import (ReadModelRebuilding, changed_schemas, code_fingerprints,
                                                       require_current_schemas)
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

# schema_fingerprint(FunnelReadModel()) of its DDL alone: UTC adds nothing to it (74b6cf247e58f864 at 5c60f50, before
# zones; issue 14's `funnel_intervals.length_band`, then `funnel_tallies.n` and `funnel_sums` changed the DDL, hence
# the value)
FUNNEL_BEFORE_ZONES = "d183618186faa2f8"
SHANGHAI = zone_named("Asia/Shanghai")
UNTIL = datetime(2026, 6, 1, tzinfo=timezone.utc)
UTC_LATER = datetime(2026, 5, 20, 23, 30, tzinfo=timezone.utc)  # 07:30 on 21 May in Shanghai: other days


@pytest.fixture
def built_in_utc(tmp_path: Path) -> Iterator[tuple[CrmApplication, ReadModelStore]]:
    """A demo log (seeded, 60 days) whose read models were built in UTC."""
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    with closing(CrmApplication(database)) as app, closing(ReadModelStore(database)) as store:
        app.ensure_default_pipelines()
        DemoHistory(app, DemoSettings(seed=5, leads=60, days=60, until=UNTIL)).run()
        projector_for(app, store).catch_up()
        yield app, store


def test_utc_keeps_the_fingerprint_of_before_and_another_zone_changes_the_funnels_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert schema_fingerprint(FunnelReadModel()) == schema_fingerprint(configured(FunnelReadModel)) == FUNNEL_BEFORE_ZONES
    utc = code_fingerprints(list(READ_MODELS))
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    shanghai = code_fingerprints(list(READ_MODELS))
    assert configured(FunnelReadModel).built_with() == "time zone Asia/Shanghai"
    assert {name for name in READ_MODELS if utc[name] != shanghai[name]} == {"funnel"}
    assert configured(SegmentsReadModel).built_with() == ""


def test_a_changed_zone_is_a_changed_schema_refused_until_rebuilt_online(
        built_in_utc: tuple[CrmApplication, ReadModelStore], monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = built_in_utc
    before = funnel_queries(store).report("sales", stages_of(app, "sales"), UTC_LATER)
    old_follower = projector_for(app, store, ["funnel"])  # a process still running with CRM_TIME_ZONE unset
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    models = [configured(model) for model in READ_MODELS.values()]
    stored = dict(store.query("SELECT name, fingerprint FROM projection_schemas"))

    assert changed_schemas(store, models) == ["funnel"]  # what `crm serve` builds online at its start
    with pytest.raises(ReadModelRebuilding, match="CRM_TIME_ZONE"):  # HTTP 503, CLI exit 1
        require_current_schemas(store, stored, app.event_count())

    rebuild_online(app, store, ["funnel"])
    stored = dict(store.query("SELECT name, fingerprint FROM projection_schemas"))
    require_current_schemas(store, stored, app.event_count())  # current again
    assert funnel_queries(store).report("sales", stages_of(app, "sales"), UTC_LATER) == before  # the same funnel
    app.capture_lead(CaptureLead("线索", "华东", "零售", "web"), Meta(occurred_at=UNTIL, actor="李娜"))
    with pytest.raises(FeederConflict, match="settings"):  # no UTC days written among Shanghai ones
        old_follower.catch_up()
    days = {period for (period,) in store.query("SELECT DISTINCT period FROM funnel_tallies WHERE grain = 'd'")}
    assert days == {day_number(from_micros(at), SHANGHAI) for (at,) in store.query("SELECT at FROM funnel_changes")}
