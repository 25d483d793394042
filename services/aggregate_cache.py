"""The aggregates this process saved last, so that the next command on one neither reads nor replays the log.

Customers and leads are never kept, and deals and tickets are kept without their personal attributes
(title, subject: replaced by a placeholder no command reads): forgetting a person must leave no decrypted
copy of their data in any process. A command takes its aggregate out of the cache and only
a successful save puts it back, so two threads never share an object and a refused command leaves
nothing half-changed behind. A command on a kept copy does not read the log first: its save finds out
whether another process wrote meanwhile (the log's version key), and if so the command is decided again on
the log's state (`CrmApplication._change`).
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any
from uuid import UUID

from domain.campaign import Campaign
from domain.deal import Deal
from domain.personal_data import PERSONAL_ATTRIBUTES
from domain.pipeline import Pipeline
from domain.ticket import Ticket

CACHED_TYPES: tuple[type, ...] = (Deal, Ticket, Campaign, Pipeline)
DEFAULT_SIZE = 4096
NOT_KEPT = "(not kept)"


class AggregateCache:
    """A bounded, least-recently-saved-first-out map of aggregate id → the aggregate as this process saved it."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._aggregates: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = Lock()

    def take(self, aggregate_id: UUID) -> Any | None:
        """The kept aggregate, removed from the cache (None if there is none)."""
        with self._lock:
            return self._aggregates.pop(aggregate_id, None)

    def keep(self, aggregate: Any) -> None:
        """Keep a just-saved aggregate of a cached type (others are ignored)."""
        if not isinstance(aggregate, CACHED_TYPES):
            return
        for name in PERSONAL_ATTRIBUTES.get(type(aggregate), ()):
            setattr(aggregate, name, NOT_KEPT)
        with self._lock:
            self._aggregates[aggregate.id] = aggregate
            self._aggregates.move_to_end(aggregate.id)
            if len(self._aggregates) > self._size:
                self._aggregates.popitem(last=False)
