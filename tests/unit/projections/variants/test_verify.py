"""`crm projections verify variants`: the variants read model rebuilt by its handlers in a private place equals the
live one row for row — and a live row changed by hand is found."""

from __future__ import annotations

from pathlib import Path

from domain.base import Meta
from services.application import CrmApplication
from services.bulk.verify_rebuild import verify
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.equivalence import PIPELINES_DEFINED
from tests.support.variant_histories import apply_variant_history

HISTORY = [("expose", 0, 5, False), ("expose", 1, 6, False), ("lead", 2, 7, False), ("respond", 4, 8, False),
           ("lead_step", 2, 9, False), ("stop", 6, 10, False), ("winner", 5, 11, False)]


def test_verify_finds_the_variants_read_model_equal_then_a_changed_row(tmp_path: Path) -> None:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    app, store = CrmApplication(database), ReadModelStore(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    apply_variant_history(app, HISTORY, lambda: None)
    projector_for(app, store).catch_up()
    assert store.query("SELECT COUNT(*) FROM variants_exposures")[0][0] == 2
    assert verify(app, store, ["variants"]).equal
    with store.transaction() as cursor:
        cursor.execute("UPDATE variants_exposures SET count = count + 1 WHERE seq = "
                       "(SELECT MIN(seq) FROM variants_exposures)")
    assert not verify(app, store, ["variants"]).equal
    store.close()
    app.close()
