"""The tickets report summed from the pre-summed tables equals the report derived from every row (the
reference, `ticket_facts_report`), at any instant and for any page of its breaching tickets, for random histories;
the summed tables the handlers keep do not depend on how the log was batched, and equal those `derive`
computes from the fact tables alone (what the bulk fold writes)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.tickets import TicketsReadModel
from projections.tickets.summed_report import summed_report
from projections.tickets.ticket_facts_report import FactsTicketQueries
from projections.tickets.ticket_tallies import duration_class
from services.application import CrmApplication
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import apply_history, batch_sizes, instants, operations
from tests.support.ticket_histories import PAGES, derived, openings, run_ticket_example, summed_tables, ticket_histories


def assert_equal_to_the_reference(app: CrmApplication, store: ReadModelStore, days: list[int]) -> None:
    reference = FactsTicketQueries(store, app.keys.unseal_all_marks)
    for day in [*days, -400, 400]:
        for hours in (0, 7, 23):
            as_of = T0 + timedelta(days=day, hours=hours)
            for page in PAGES:
                assert summed_report(store, app.keys.unseal_all_marks, as_of, page) == reference.report(
                    as_of, page=page), (day, hours, page)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_summed_report_equals_the_report_derived_from_every_row(ops: list, days: list[int], batch: int) -> None:
    app = CrmApplication(database_from_url("memory://"))
    app.ensure_default_pipelines()
    live, rebuilt = (ReadModelStore(database_from_url("memory://")) for _ in range(2))
    projector = Projector(app, live, [TicketsReadModel()])
    apply_history(app, ops, on_sync=lambda: projector.catch_up(limit=batch))
    projector.catch_up(limit=batch)
    Projector(app, rebuilt, [TicketsReadModel()]).catch_up()
    assert summed_tables(live) == summed_tables(rebuilt) == derived(rebuilt)
    assert_equal_to_the_reference(app, live, days)
    for store in (live, rebuilt):
        store.close()
    app.close()


def test_duration_classes_follow_the_times() -> None:
    times = [-5, 0, 1, (1 << 20) - 1, 1 << 20, 3_600_000_000, 3_600_000_001, 7 * 86_400_000_000, 1 << 50]
    classes = [duration_class(value) for value in times]
    assert classes == sorted(classes)
    assert duration_class(3_600_000_000) == duration_class(3_600_000_001)  # ≤ 1/16 octave apart


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opened=openings, steps=ticket_histories, batch=st.sampled_from([1, 3, 1000]), seed=st.integers(0, 1000))
def test_summed_report_equals_the_reference_on_histories_of_many_tickets(opened: list[int], steps: list,
                                                                          batch: int, seed: int) -> None:
    run_ticket_example(database_from_url("memory://"), opened, steps, batch, seed)
