"""Reference data — pipelines, vocabularies, exchange rates, campaigns (`domain.partitions.is_reference`) —
held by every shard: written to the default shard first, then copied, event for event, to the others.

The default shard's version check decides between two writers (they save there, so one of them is refused,
as with one database); the other shards only ever receive copies, with the same ids, versions and content, so
a deal on shard 2 reads the same pipeline as one on shard 0. Copying is idempotent — an aggregate's events
are copied from the version after the one the shard already has — so it may be repeated at will: after each
write (only that aggregate), at every start and by `crm shards sync` (every reference aggregate), which
heals a process that died between two shards. A shard that refused a copy keeps the old version until then:
its commands read the pipeline or vocabulary as the default shard had it a moment before, as a process of
a single database reading a cached copy would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.campaign import Campaign
from domain.exchange_rates import ExchangeRate
from domain.pipeline import Pipeline
from domain.targets import OwnerTeam, Target
from domain.vocabulary import Vocabulary
from services.application import CrmApplication

log = logging.getLogger(__name__)
REFERENCE_AGGREGATES = (Pipeline, Vocabulary, ExchangeRate, Campaign, Target, OwnerTeam)
BATCH = 1000  # events per save while syncing (the ECB's ≈ 200k rates: 200 saves per shard, not 200k)
HEADS_BY_SCAN = 200  # more aggregates than this: one pass over the target's reference events, not a query each


@cache
def reference_topics() -> tuple[str, ...]:
    """The topics of every event class of the reference aggregates (nested classes, inherited ones too)."""
    topics = set()
    for aggregate in REFERENCE_AGGREGATES:
        for name in dir(aggregate):
            value = getattr(aggregate, name)
            if isinstance(value, type) and issubclass(value, aggregate.Event) and value.__qualname__.startswith(
                    aggregate.__name__ + "."):
                topics.add(get_topic(value))
    return tuple(sorted(topics))


def reference_heads(app: CrmApplication, batch: int = 5000) -> dict[UUID, int]:
    """Each reference aggregate's latest version in `app`'s log (one pass over its reference events)."""
    heads: dict[UUID, int] = {}
    start, topics = 1, list(reference_topics())
    while True:
        notifications = app.recorder.select_notifications(start, batch, topics=topics)
        for n in notifications:
            heads[n.originator_id] = max(heads.get(n.originator_id, 0), n.originator_version)
        if len(notifications) < batch:
            return heads
        start = notifications[-1].id + 1


def head_of(app: CrmApplication, aggregate_id: UUID) -> int:
    latest = list(app.recorder.select_events(aggregate_id, desc=True, limit=1))
    return latest[0].originator_version if latest else 0


def copy_aggregates(source: CrmApplication, target: CrmApplication, aggregate_ids: Iterable[UUID],
                    known: dict[UUID, int] | None = None, saved: Sequence[Any] = ()) -> int:
    """Copy to `target` the events of these aggregates it lacks (`known`: its heads, when already read;
    `saved`: events `source` just saved, used as they are when `target` has everything before them); returns
    how many were copied. Saved in batches; a batch refused because another process copied some of it first
    is redone one aggregate at a time, each from the head `target` then has."""
    ids = list(aggregate_ids)
    if known is None and len(ids) > HEADS_BY_SCAN:
        known = reference_heads(target)
    just_saved: dict[UUID, list[Any]] = {}
    for event in saved:
        just_saved.setdefault(event.originator_id, []).append(event)
    pending: list[Any] = []
    copied = 0
    for aggregate_id in ids:
        have = known.get(aggregate_id, 0) if known is not None else head_of(target, aggregate_id)
        fresh = just_saved.get(aggregate_id, [])
        if fresh and fresh[0].originator_version == have + 1:
            pending.extend(fresh)  # no need to read them back from the source
        else:
            pending.extend(source.events.get(aggregate_id, gt=have))
        if len(pending) >= BATCH:
            copied += _save(target, source, pending)
            pending = []
    return copied + (_save(target, source, pending) if pending else 0)


def _save(target: CrmApplication, source: CrmApplication, events: list[Any]) -> int:
    try:
        target.save(*events)
        return len(events)
    except IntegrityError:
        pass  # another process copied some of them: redo each aggregate from what the target has now
    copied = 0
    for aggregate_id in dict.fromkeys(e.originator_id for e in events):
        missing = list(source.events.get(aggregate_id, gt=head_of(target, aggregate_id)))
        try:
            if missing:
                target.save(*missing)
                copied += len(missing)
        except IntegrityError:
            log.info("reference aggregate %s was copied by another process meanwhile", aggregate_id)
    return copied


def sync_reference_data(default: CrmApplication, others: Iterable[CrmApplication]) -> Iterator[int]:
    """Copy every reference event the default shard has and another lacks; yields the count per other shard."""
    wanted = reference_heads(default)
    for target in others:
        have = reference_heads(target)
        behind = [i for i, version in wanted.items() if have.get(i, 0) < version]
        yield copy_aggregates(default, target, behind, have)
