"""`crm import` of the sample Salesforce and HubSpot exports into PostgreSQL: written by COPY in one
transaction, read back by the read models, a second import writes nothing, a refused import writes nothing."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from projections.funnel import FunnelFilters, FunnelQueries
from services.application import CrmApplication
from services.history.csv_import.csv_importer import CsvImportRefused, run_csv_import
from services.history.csv_import.mapping import load_mapping
from services.projection_runtime.funnel_as_of import stages_of
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imports"


def test_both_sample_exports_import_into_postgres_and_read_as_funnels(pg_database) -> None:
    app = CrmApplication(database_from_url(pg_database))
    written = sum(run_csv_import(app, load_mapping(FIXTURES / name)).written
                  for name in ("salesforce/mapping.toml", "hubspot/mapping.toml"))
    assert written == app.event_count() == 67  # 3 of them the deals' products ([files.properties])
    assert [n for n, _ in app.read_log()] == list(range(1, written + 1))  # gap-free, one COPY per import
    assert run_csv_import(app, load_mapping(FIXTURES / "hubspot" / "mapping.toml")).written == 0
    store = ReadModelStore(app.database)
    Projector(app, store, [model() for model in READ_MODELS.values()]).catch_up()
    quarter_end = datetime(2024, 3, 31, tzinfo=timezone.utc)
    report = FunnelQueries(store).report("hs_sales", stages_of(app, "hs_sales"), quarter_end, FunnelFilters())
    by_owner = FunnelQueries(store).report("sf_sales", stages_of(app, "sf_sales"), quarter_end,
                                           FunnelFilters(owner="005Dn00000OwnerA1"))
    assert (report.won, report.lost) == (1, 1)
    assert by_owner.won == 1
    store.close()
    app.close()


def test_a_refused_csv_import_writes_nothing_to_postgres(pg_database, tmp_path) -> None:
    folder = tmp_path / "hubspot"
    shutil.copytree(FIXTURES / "hubspot", folder)
    (folder / "deals.csv").write_text((folder / "deals.csv").read_text(encoding="utf-8").replace("48,000", "lots"),
                                      encoding="utf-8")
    app = CrmApplication(database_from_url(pg_database))
    with pytest.raises(CsvImportRefused):
        run_csv_import(app, load_mapping(folder / "mapping.toml"))
    assert app.event_count() == 0
    app.close()
