"""Shared fixtures for the domain unit tests: business-time Meta, the sales pipeline, replay and refusal checks.

Everything here works on plain aggregates in memory; no application, no event store.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from domain.base import Meta
from domain.errors import DomainError
from domain.pipeline import DEFAULT_PIPELINES, Pipeline

DOMAIN_T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def t0() -> datetime:
    """1 March 2026 09:00 UTC, the business-time origin of these tests."""
    return DOMAIN_T0


@pytest.fixture
def meta_at() -> Callable[..., Meta]:
    """Factory: Meta for an event `days` after 1 March 2026 09:00 UTC, by 李娜 unless told otherwise."""

    def make(days: float = 0, actor: str = "李娜", correlation_id: str | None = None) -> Meta:
        extra = {} if correlation_id is None else {"correlation_id": correlation_id}
        return Meta(occurred_at=DOMAIN_T0 + timedelta(days=days), actor=actor, **extra)

    return make


def _define(key: str, meta: Meta) -> Pipeline:
    name, stages = DEFAULT_PIPELINES[key]
    return Pipeline.define(key, name, stages, meta)


@pytest.fixture
def sales_pipeline(meta_at: Callable[..., Meta]) -> Pipeline:
    """The default sales pipeline, defined 30 days before T0 (its Defined event is still pending)."""
    return _define("sales", meta_at(-30, "setup"))


@pytest.fixture
def marketing_pipeline(meta_at: Callable[..., Meta]) -> Pipeline:
    return _define("marketing", meta_at(-30, "setup"))


def state_of(aggregate: Any) -> dict[str, Any]:
    """An aggregate's attributes, without the list of events not yet collected."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


@pytest.fixture
def replay() -> Callable[[Iterable[Any]], Any]:
    """Rebuild an aggregate from its events: `mutate(None)` for the first, then each in order."""

    def rebuild(events: Iterable[Any]) -> Any:
        events = list(events)
        aggregate = events[0].mutate(None)
        for event in events[1:]:
            aggregate = event.mutate(aggregate)
        return aggregate

    return rebuild


@pytest.fixture
def assert_replays(replay: Callable[[Iterable[Any]], Any]) -> Callable[[Any], Any]:
    """Collect all of an aggregate's events, replay them, and check the rebuilt state is identical."""

    def check(aggregate: Any) -> Any:
        events = aggregate.collect_events()
        assert events, "nothing to replay"
        rebuilt = replay(events)
        assert type(rebuilt) is type(aggregate)
        assert state_of(rebuilt) == state_of(aggregate)
        return rebuilt

    return check


@pytest.fixture
def refuse() -> Callable[..., DomainError]:
    """Run a command that must be refused with DomainError matching `match`, and check the aggregate
    is left exactly as it was: same version, no new pending event, same attributes."""

    def check(aggregate: Any, match: str, command: Callable[[], Any]) -> DomainError:
        version = aggregate.version
        pending = len(aggregate.pending_events)
        before = copy.deepcopy(state_of(aggregate))
        with pytest.raises(DomainError, match=match) as caught:
            command()
        assert aggregate.version == version
        assert len(aggregate.pending_events) == pending
        assert state_of(aggregate) == before
        return caught.value

    return check
