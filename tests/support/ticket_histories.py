"""Random histories of many tickets for the tickets' summed report (every step, late and on time, arriving in
any order), and the check that holds the summed report equal to the reference (`ticket_facts_report`) on them:
run on SQLite (tests/unit/projections/tickets/test_summed_report.py) and PostgreSQL
(tests/integration/test_ticket_tallies_postgres.py)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson
from hypothesis import strategies as st

from domain.base import Meta
from domain.errors import DomainError
from domain.vocabulary import TICKET_PRIORITIES
from projections.tickets import BreachPage, TicketsReadModel
from projections.tickets.summed_report import summed_report
from projections.tickets.ticket_facts_report import FactsTicketQueries
from projections.tickets.ticket_tallies import SUMMED_TABLES, derive
from services.application import CrmApplication
from services.commands import (AssignTicket, ChangeTicketStatus, CloseTicket, OpenDeal, OpenTicket, RateTicket,
                               RegisterCustomer, ReopenTicket, ResolveTicket, WinDeal)
from services.projection_runtime.projector import Projector
from services.settings import Database, database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at

PAGES = (BreachPage(), BreachPage(0, 1), BreachPage(1, 2), BreachPage(2, 50), BreachPage(40, 5))

_STEPS = ("assign", "progress", "progress", "wait", "resolve", "resolve", "resolve", "rate", "rate", "rate", "reopen",
          "close", "win")
openings = st.lists(st.integers(0, 200), min_size=1, max_size=8)
ticket_histories = st.lists(st.tuples(st.sampled_from(_STEPS), st.integers(0, 7), st.integers(0, 30),
                                      st.integers(1, 5)), min_size=30, max_size=90)


def apply_ticket_history(app: CrmApplication, opened: list[int], steps: list[tuple[str, int, int, int]],
                         arrival: random.Random, on_step: Callable[[], None] = lambda: None) -> None:
    """Two customers (each win step wins them a new deal); tickets opened at `opened` (hours, each ticket's clock then runs
    forward by each step's hours); the aggregates' events arrive interleaved at random (an import adds to
    the past), each aggregate's in order. Steps a ticket's state refuses are left out."""
    customers = [app.register_customer(RegisterCustomer(f"客户{i}", "华东", "制造业", "web"), at(0)) for i in range(2)]
    tickets: list[UUID] = []
    for i, hours in enumerate(opened):
        meta = at(hours / 24)
        tickets.append(app.open_ticket(OpenTicket(customers[i % 2], f"问题{i}", "phone",
                                                  priority=TICKET_PRIORITIES[i % 4]), meta))
    clocks = [float(h) for h in opened]
    queue: list[tuple[int, float, str, int]] = []
    for kind, index, hours, score in steps:
        index %= len(tickets)
        clocks[index] += hours / 3
        queue.append((index, clocks[index], kind, score))
    lanes: dict[int, list[tuple[float, str, int]]] = {}
    for index, when, kind, score in queue:
        lanes.setdefault(index, []).append((when, kind, score))
    while lanes:
        index = arrival.choice(sorted(lanes))
        when, kind, score = lanes[index].pop(0)
        if not lanes[index]:
            del lanes[index]
        _step(app, tickets[index], customers[index % 2], kind, score, at(when / 24, ("赵磊", "吴艳")[score % 2]))
        on_step()


def _step(app: CrmApplication, ticket: UUID, customer: UUID, kind: str, score: int, meta: Meta) -> None:
    commands: dict[str, Callable[[], Any]] = {
        "assign": lambda: app.assign_ticket(AssignTicket(ticket, ("赵磊", "吴艳", "周涛")[score % 3]), meta),
        "progress": lambda: app.change_ticket_status(ChangeTicketStatus(ticket, "in_progress"), meta),
        "wait": lambda: app.change_ticket_status(ChangeTicketStatus(ticket, "waiting_customer"), meta),
        "resolve": lambda: app.resolve_ticket(ResolveTicket(ticket, "已解决"), meta),
        "rate": lambda: app.rate_ticket(RateTicket(ticket, score, ""), meta),
        "reopen": lambda: app.reopen_ticket(ReopenTicket(ticket, "复发"), meta),
        "close": lambda: app.close_ticket(CloseTicket(ticket), meta),
        "win": lambda: app.win_deal(WinDeal(app.open_deal(OpenDeal(customer, "增购", "100", owner="李娜"), meta)), meta),
    }
    try:
        commands[kind]()
    except DomainError:
        pass




def summed_tables(store: ReadModelStore) -> tuple[list[tuple[object, ...]], ...]:
    return tuple(sorted(tuple(orjson.loads(v) if table.json_columns and i == 2 else v for i, v in enumerate(row))
                        for row in store.query(f"SELECT * FROM {table.name}")) for table in SUMMED_TABLES)


def derived(store: ReadModelStore) -> tuple[list[tuple[object, ...]], ...]:
    return tuple(sorted(tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows)
                 for rows in derive(store.query))


def run_ticket_example(database: Database, opened: list[int], steps: list, batch: int, seed: int,
                       every: int = 29) -> None:
    """The history on `database` (its read models in it too), caught up every few steps in batches of `batch`;
    a rebuild from zero (in memory) keeps the same summed tables as the live one and as `derive`, and the
    live summed report equals the reference at instants `every` quarter-hours apart over 12 days (29: ≈ 40), for
    every page of `PAGES`."""
    app = CrmApplication(database)
    app.ensure_default_pipelines()
    live, rebuilt = ReadModelStore(database), ReadModelStore(database_from_url("memory://"))
    projector = Projector(app, live, [TicketsReadModel()])
    arrival = random.Random(seed)
    apply_ticket_history(app, opened, steps, arrival,
                         on_step=lambda: projector.catch_up(limit=batch) if arrival.random() < 0.1 else None)
    projector.catch_up(limit=batch)
    Projector(app, rebuilt, [TicketsReadModel()]).catch_up()
    assert summed_tables(live) == summed_tables(rebuilt) == derived(rebuilt)
    reference = FactsTicketQueries(live, app.keys.unseal_all_marks)
    for quarter_hours in range(-4, 4 * 24 * 12, every):  # at odd minutes
        as_of = T0 + timedelta(hours=quarter_hours / 4)
        for page in PAGES:
            assert summed_report(live, app.keys.unseal_all_marks, as_of, page) == reference.report(
                as_of, page=page), (quarter_hours, page)
    for store in (live, rebuilt):
        store.close()
    app.close()
