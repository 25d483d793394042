"""The history-based forecast and its backtest on PostgreSQL answer exactly as on SQLite: the SQL (a CTE, integer
division of µs into days, the zone's offsets as a CASE, sums of squares in DOUBLE PRECISION, GROUP BY position)
means the same on both."""

from __future__ import annotations

from contextlib import closing
from datetime import date, datetime

from domain.exchange_rates import Conversion
from projections.forecast.outlook import OutlookQueries
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.forecast_history import SHANGHAI, build

T, U = datetime(2025, 3, 1, tzinfo=SHANGHAI), datetime(2025, 7, 1, tzinfo=SHANGHAI)


def backtest(url: str) -> dict:
    database = database_from_url(url)
    with closing(CrmApplication(database)) as crm, closing(ReadModelStore(database)) as store:
        build(crm, date(2024, 1, 1), 17)  # 14 whole months before T: all but `seasonal`
        projector_for(crm, store, ["forecast"]).catch_up()
        money = Conversion()
        return OutlookQueries(store).backtest(T, U, "month", 3, None, 80, SHANGHAI, money, money).to_dict()


def test_postgresql_and_sqlite_give_the_same_backtest(pg_database: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    on_postgres, on_sqlite = backtest(pg_database), backtest(f"sqlite:///{tmp_path / 'crm.sqlite3'}")

    assert on_postgres == on_sqlite
    assert [m["method"] for m in on_postgres["methods"] if m["available"]] == [
        "weighted", "pipeline_conversion", "trend", "naive"]
    assert on_postgres["actuals"][0]["won_cents"] > 0
