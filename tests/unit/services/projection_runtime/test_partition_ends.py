"""The partitions' ends read in the background: a query takes the last reading, never an old one, and a
reader that fails leaves the lag unknown (logged once) until it reads again."""

from __future__ import annotations

import logging
import threading

import pytest

from services.projection_runtime.partition_ends import PartitionEnds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_reading_is_used_until_it_is_older_than_its_max_age() -> None:
    clock, readings = Clock(), iter([{3: 10}, {3: 12}])
    ends = PartitionEnds(lambda: next(readings), max_age=5.0, clock=clock)
    assert ends() is None  # nothing read yet: no lag header rather than a made-up one

    ends.refresh()
    clock.now += 5.0
    assert ends() == {3: 10}
    clock.now += 0.1
    assert ends() is None
    ends.refresh()
    assert ends() == {3: 12}


def test_a_failing_reader_keeps_the_last_reading_until_it_ages_and_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, outcomes = Clock(), iter([{1: 4}, OSError("broker away"), OSError("broker away"), {1: 6}])

    def read() -> dict[int, int]:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    ends = PartitionEnds(read, max_age=5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="services.projection_runtime.partition_ends"):
        ends.refresh()
        clock.now += 1
        ends.refresh()
        assert ends() == {1: 4}
        clock.now += 5
        ends.refresh()
        assert ends() is None
        ends.refresh()

    assert ends() == {1: 6}
    assert [r.message.split(" (")[0] for r in caplog.records] == ["partition ends unreadable",
                                                                  "partition ends readable again"]


def test_the_thread_reads_every_interval_and_stop_closes_the_reader() -> None:
    read_twice, closed, count = threading.Event(), threading.Event(), [0]

    def read() -> dict[int, int]:
        count[0] += 1
        if count[0] == 2:
            read_twice.set()
        return {0: count[0]}

    ends = PartitionEnds(read, every=0.01, close=closed.set)
    ends.start()
    assert read_twice.wait(5)
    ends.stop()

    assert closed.is_set() and ends()[0] >= 2  # type: ignore[index]
