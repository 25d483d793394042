"""The report summed from tallies equals the report derived from every fact, at any instant, for random
histories; and the tallies and steps the handlers keep do not depend on how the log was batched, and equal
those `derive` computes from the fact tables alone."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, given, settings

from domain.exchange_rates import Conversion, RateInForce
from projections.campaigns import CampaignsReadModel
from projections.campaigns.facts_report import facts_report, load_facts
from projections.campaigns.summed import summed_report
from projections.campaigns.summed_tables import STEPS, TALLIES, derive
from projections.tables import micros
from services.application import CrmApplication
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import apply_history, batch_sizes, instants, operations

# Whole-number rates: converting each won deal (the reference) and each sum (the tallies) then agree to
# the cent; with fractional rates they may differ by half a cent per deal (see summed.py).
WHOLE_RATES = Conversion("CNY", {"USD": RateInForce(Decimal(7), date(2026, 1, 1)),
                                 "BRL": RateInForce(Decimal(2), date(2026, 1, 1))})


def _tables(store: ReadModelStore) -> tuple[list[tuple[object, ...]], ...]:
    return tuple(sorted((*row[:-1], orjson.loads(row[-1])) for row in store.query(f"SELECT * FROM {table.name}"))
                 for table in (STEPS, TALLIES))


def _derived(store: ReadModelStore) -> tuple[list[tuple[object, ...]], ...]:
    steps, tallies = derive(store.query)
    return sorted(tuple(row.values()) for row in steps), sorted(tuple(row.values()) for row in tallies)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_summed_report_equals_the_report_derived_from_every_fact(ops: list, days: list[int], batch: int) -> None:
    app = CrmApplication(database_from_url("memory://"))
    app.ensure_default_pipelines()
    live, rebuilt = (ReadModelStore(database_from_url("memory://")) for _ in range(2))
    projector = Projector(app, live, [CampaignsReadModel()])
    apply_history(app, ops, on_sync=lambda: projector.catch_up(limit=batch))
    projector.catch_up(limit=batch)
    Projector(app, rebuilt, [CampaignsReadModel()]).catch_up()
    assert _tables(live) == _tables(rebuilt) == _derived(rebuilt)
    for day in [*days, -400, 400]:
        as_of = T0 + timedelta(days=day, hours=7)
        for money in (Conversion(), WHOLE_RATES, Conversion("USD")):
            expected = facts_report(as_of, load_facts(live, micros(as_of), money), None, money)
            assert summed_report(live, as_of, None, money) == expected, (day, money)
            channel = "event"
            assert summed_report(live, as_of, channel, money) == facts_report(
                as_of, load_facts(live, micros(as_of), money), channel, money)
    for store in (live, rebuilt):
        store.close()
    app.close()
