"""A backtest on the demo's history (`crm demo`, services/demo/sample_data.py: two years of campaigns, leads and
deals, no season built in) shows each method's error: every method gives numbers with its errors, or says
"not enough history" with its counts — never a made-up number. Here with fewer leads than `crm demo`'s 10,000
so that it takes seconds; the same seed and days."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.forecast_methods import METHODS
from projections.forecast.outlook import OutlookQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

UNTIL = datetime(2026, 11, 30, tzinfo=timezone.utc)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadModelStore]:
    database = database_from_url(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'crm.sqlite3'}")
    with closing(CrmApplication(database)) as app, closing(ReadModelStore(database)) as store:
        app.ensure_default_pipelines()
        DemoHistory(app, DemoSettings(seed=7, leads=2500, days=730, until=UNTIL)).run()
        projector_for(app, store, ["forecast", "rates"]).catch_up()
        yield store


@pytest.mark.parametrize(("as_of", "grain", "periods"), [
    (datetime(2026, 5, 1, tzinfo=SHANGHAI), "month", 6),
    (datetime(2026, 1, 1, tzinfo=SHANGHAI), "quarter", 3),
])
def test_every_method_has_its_errors_or_says_not_enough_history(demo: ReadModelStore, as_of: datetime, grain: str,
                                                                 periods: int) -> None:
    money = RateQueries(demo).conversion("CNY", UNTIL)
    found = OutlookQueries(demo).backtest(as_of, UNTIL, grain, periods, None, 80, SHANGHAI, money, money).to_dict()

    assert [m["method"] for m in found["methods"]] == list(METHODS)
    assert all(a["complete"] for a in found["actuals"]) and all(a["won_cents"] > 0 for a in found["actuals"])
    for method in found["methods"]:
        if method["available"]:
            assert len(method["periods"]) == periods and method["errors"]["periods_compared"] == periods
            assert method["errors"]["mae_cents"] >= 0 and method["errors"]["mape_percent"] is not None
        else:
            assert re.fullmatch(r"not enough history: \d+ (periods|closed stage entries), need \d+", method["reason"])
            assert method["periods"] == [] and method["errors"] is None
    by_name = {m["method"]: m for m in found["methods"]}
    assert by_name["pipeline_conversion"]["available"] and by_name["weighted"]["available"]
    if grain == "month":  # 15 whole months of wins by May 2026: a trend, not yet a season
        assert by_name["trend"]["available"]
        assert by_name["seasonal"]["reason"] == f"not enough history: {len(found['history'])} periods, need 24"
