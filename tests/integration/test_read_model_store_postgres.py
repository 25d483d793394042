"""The read-model store on PostgreSQL: a read PostgreSQL aborts as a deadlock's victim is asked again. An online
rebuild's swap takes a read model's tables one by one; a report joining two of them in the other order closed a
cycle and failed (the benchmark's funnel query during `crm projections rebuild --online`)."""

from __future__ import annotations

import threading
import time

import psycopg

from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore


def test_a_read_chosen_as_a_deadlocks_victim_is_asked_again(pg_database: str) -> None:
    store = ReadModelStore(database_from_url(pg_database))
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE first_half (id INTEGER)")
        cursor.execute("CREATE TABLE second_half (id INTEGER)")
        cursor.execute("INSERT INTO first_half VALUES (1)")
        cursor.execute("INSERT INTO second_half VALUES (1)")
    swap = psycopg.connect(pg_database)  # as the swap: holds one table, then asks for the other
    swap.execute("LOCK TABLE second_half IN ACCESS EXCLUSIVE MODE")
    answers: list[object] = []
    report = threading.Thread(target=lambda: answers.append(store.query(
        "SELECT count(*) FROM first_half JOIN second_half USING (id)")))  # holds first_half, waits second_half
    report.start()
    time.sleep(0.3)  # the report waits first, so its deadlock check (after 1 s) finds the cycle: it is the victim
    swap.execute("LOCK TABLE first_half IN ACCESS EXCLUSIVE MODE")  # granted once the report is aborted
    swap.commit()
    report.join(30)

    assert answers == [[(1,)]]  # asked again after the swap's commit, not failed
    swap.close()
    store.close()
