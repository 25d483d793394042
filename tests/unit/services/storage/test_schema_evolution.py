"""Deal.Lost gained `competitor` in version 2: events stored in the old shape are upcast on read, and
the read models rebuild identically."""

from pathlib import Path

from domain.deal import Deal
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.schema_evolution import lost_deals


def test_an_old_shape_loss_reads_back_with_the_new_field(tmp_path: Path) -> None:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'old.db'}"))
    app.ensure_default_pipelines(at(-1))
    lost_deals(app, old_shape=True)

    losses = [e for _, e in app.read_log() if isinstance(e, Deal.Lost)]

    assert [(e.reason, e.competitor) for e in losses] == [("选择了竞争对手", ""), ("选择了竞争对手", "金蝶")]
    assert app.get(Deal, losses[0].originator_id).status == "lost"


def test_read_models_rebuilt_over_old_shape_events_equal_those_over_new_ones(tmp_path: Path) -> None:
    answers = []
    for old_shape in (True, False):
        app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / f'{old_shape}.db'}"))
        app.ensure_default_pipelines(at(-1))
        lost_deals(app, old_shape)
        store = ReadModelStore(app.database)
        projector_for(app, store).rebuild()
        answers.append(summaries(app, store, at(10).occurred_at))

    old, new = answers
    assert old == new
