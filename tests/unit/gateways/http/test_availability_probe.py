"""The database probe behind the 503 guard: one query per interval, whatever the number of requests."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from gateways.http import availability
from gateways.http.availability import DatabaseProbe


class FlakyStore:
    """Stands in for the read store: counts probe queries; fails them while `down`."""

    def __init__(self) -> None:
        self.down, self.queries = False, 0

    def query(self, sql: str) -> list[Any]:
        self.queries += 1
        if self.down:
            raise psycopg.OperationalError("connection refused")
        return [(1,)]


def test_requests_between_probes_pass_without_a_query_and_an_outage_is_seen_at_the_next_probe(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(availability.time, "monotonic", lambda: clock[0])
    store = FlakyStore()
    probe = DatabaseProbe(store, interval=0.5)  # type: ignore[arg-type]

    assert probe.up() and store.queries == 1
    store.down = True
    assert probe.recently_up() and probe.up() and store.queries == 1  # within the interval: no query

    clock[0] += 0.5
    assert not probe.recently_up() and not probe.up() and store.queries == 2
    assert not probe.recently_up()  # while down, every request asks up(), which answers from the last probe
    store.down = False
    clock[0] += 0.5
    assert probe.up() and probe.recently_up()
