"""The summed tickets report reads the read model in several statements (`summed_share`, `_times`, `_listed`,
`tickets_as_of`), each indexing into another's answer. A follower batch committed between two of them — any live
command while the report "as of now" is answered — broke it: IndexError (HTTP 500) or a median at the wrong rank
(second review of 2026-11-30). They now run in one snapshot of the read model (`ReadModelStore.snapshot`). Here a
second connection to the same database commits the batch just before the statement named, as a concurrent
follower does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from projections.tickets import BreachPage, TicketsReadModel
from projections.tickets.summed_report import summed_report
from services.application import CrmApplication
from services.commands import OpenTicket, RegisterCustomer, ReopenTicket, ResolveTicket
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at

HOUR = 1 / 24


class BatchBetween:
    """A reader's store, with `batch` committed (by another connection) once, just before the first statement
    containing `marker`."""

    def __init__(self, store: ReadModelStore, marker: str, batch: Callable[[], None]) -> None:
        self.store, self.marker, self.batch = store, marker, batch

    def snapshot(self) -> AbstractContextManager[None]:
        return self.store.snapshot()

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        if self.batch is not None and self.marker in sql:
            batch, self.batch = self.batch, None
            batch()
        return self.store.query(sql, params)


def _one_urgent_ticket(tmp_path: Path) -> Iterator[Any]:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    app = CrmApplication(database)
    app.ensure_default_pipelines()
    customer = app.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), at(0))
    ticket = app.open_ticket(OpenTicket(customer, "发票开错了", "phone", priority="urgent"), at(0))  # 1 h to answer
    writer = ReadModelStore(database)
    projector = Projector(app, writer, [TicketsReadModel()])
    projector.catch_up()
    return app, ReadModelStore(database), projector, ticket


def test_a_breaching_ticket_resolved_while_the_page_is_listed_does_not_break_the_report(tmp_path: Path) -> None:
    """Was: IndexError in summed_report._breaching (the ticket listed unresolved, resolved when its row was read)."""
    app, reader, projector, ticket = _one_urgent_ticket(tmp_path)
    as_of = T0 + timedelta(hours=3)  # 3 h unanswered: breaching, unresolved

    def resolve() -> None:
        app.resolve_ticket(ResolveTicket(ticket, "已重开发票"), at(2.5 * HOUR))
        projector.catch_up()

    report = summed_report(BatchBetween(reader, "JOIN tickets_versions v", resolve),  # type: ignore[arg-type]
                           app.keys.unseal_all_marks, as_of, BreachPage(0, 50))
    assert report.sla.breaching_total == 1 and len(report.sla.breaching) == 1
    assert report.sla.breaching[0].resolution_hours == 3  # the state before the batch, whole


def test_a_resolution_reopened_while_the_times_are_read_does_not_break_the_report(tmp_path: Path) -> None:
    """Was: IndexError in summed_report._durations (the histogram counted a time its class no longer held)."""
    app, reader, projector, ticket = _one_urgent_ticket(tmp_path)
    app.resolve_ticket(ResolveTicket(ticket, "已处理"), at(0.5 * HOUR))
    projector.catch_up()

    def reopen() -> None:
        app.reopen_ticket(ReopenTicket(ticket, "问题复现"), at(0.75 * HOUR))
        projector.catch_up()

    report = summed_report(BatchBetween(reader, "FROM tickets_durations", reopen),  # type: ignore[arg-type]
                           app.keys.unseal_all_marks, T0 + timedelta(hours=1), BreachPage(0, 50))
    assert report.resolution.count == 1 and report.resolution.median_hours == 0.5  # before the reopening
