"""services/pipeline_catalogue.py: the keys from the funnel read model plus the log after its position."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from domain.pipeline import pipeline_id
from services.application import CrmApplication
from services.commands import DefinePipeline, Stage
from services.commands.leads import CaptureLead
from services.pipeline_catalogue import defined_pipelines
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at

RENEWAL = DefinePipeline("renewal", "续约", [Stage("due", "到期"), Stage("offer", "报价")])


@pytest.fixture
def app() -> Iterator[CrmApplication]:
    application = CrmApplication(database_from_url("memory://"))
    yield application
    application.close()


@pytest.fixture
def store(app: CrmApplication) -> Iterator[ReadModelStore]:
    with closing(ReadModelStore(app.database)) as opened:
        yield opened


def keys(app: CrmApplication, store: ReadModelStore) -> list[str]:
    return [pipeline.key for pipeline in defined_pipelines(app, store)]


def test_without_a_funnel_read_model_the_log_is_read(app: CrmApplication, store: ReadModelStore) -> None:
    app.ensure_default_pipelines(at(-1))
    app.handle(RENEWAL, at(0))

    assert keys(app, store) == ["marketing", "renewal", "sales", "service"]


def test_a_standard_pipeline_the_funnel_met_before_its_definition_is_not_listed(
        app: CrmApplication, store: ReadModelStore) -> None:
    app.handle(RENEWAL, at(0))
    app.handle(CaptureLead("王五", "华东", "制造业", "web", company="某公司"), at(1))
    projector_for(app, store).catch_up()  # the funnel holds the marketing pipeline's row: the lead entered it

    assert "marketing" in {key for (key,) in store.query("SELECT pipeline FROM funnel_pipelines")}
    assert keys(app, store) == ["renewal"]


def test_definitions_after_the_funnels_position_are_found_in_the_log(app: CrmApplication,
                                                                       store: ReadModelStore) -> None:
    app.handle(RENEWAL, at(0))
    projector_for(app, store).catch_up()
    app.handle(DefinePipeline("partner", "渠道", [Stage("a", "甲"), Stage("b", "乙")]), at(1))

    pipelines = defined_pipelines(app, store)

    assert [p.key for p in pipelines] == ["partner", "renewal"]
    assert pipelines[0].id == pipeline_id("partner") and pipelines[0].version == 1
