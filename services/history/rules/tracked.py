"""The compact state the in-order checks keep: per aggregate a `Tracked`, per reference not resolved yet a
`Waiting`.

`Tracked` holds only the few values the lifecycle rules read, under the aggregate's own attribute names
(status, stage, pipeline, owner, …), in slots: with its key in the engine's dict ≈ 240 bytes per aggregate
(measured with tracemalloc on the demo history), instead of an aggregate object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from domain.base import CrmAggregate
from domain.campaign_variants import VariantState
from domain.pipeline import Pipeline
from domain.segment_change_rules import SegmentChange
from domain.vocabulary import Terms
from services.history.rules.facts import Facts, micros


class Tracked:
    """What the rules read of one aggregate, after its events so far (the aggregate's attribute names)."""

    __slots__ = ("kind", "version", "last", "logged", "status", "stage", "pipeline", "owner", "contacted", "rated",
                 "forgotten", "stages", "terms", "variant_state")

    def __init__(self, kind: type, version: int = 0, last: int | None = None, logged: bool = False) -> None:
        self.kind, self.version, self.last, self.logged = kind, version, last, logged
        self.status = self.stage = self.pipeline = self.owner = None
        self.contacted = self.rated = self.forgotten = False
        self.stages: list[str] | tuple[str, ...] = ()  # a pipeline's get a list: an empty one is 56 bytes
        self.terms: Terms | None = None  # a vocabulary's values in force (other aggregates: None, 8 bytes)
        self.variant_state: VariantState | None = None  # a campaign's variants (`Campaign.variant_state`)

    @classmethod
    def of(cls, aggregate: CrmAggregate) -> Tracked:
        """The state of an aggregate loaded from the log."""
        tracked = cls(type(aggregate), aggregate.version, micros(aggregate.last_occurred_at), logged=True)
        for name in cls.__slots__[4:]:
            if hasattr(aggregate, name):
                setattr(tracked, name, getattr(aggregate, name))
        if isinstance(aggregate, Pipeline):
            tracked.pipeline, tracked.stages = aggregate.key, list(aggregate.stage_keys)
        elif isinstance(aggregate, SegmentChange):  # the tier it went into: the next link's old tier
            tracked.status = aggregate.new_tier
        return tracked


class Waiting(NamedTuple):
    """A line whose reference names an aggregate not seen yet."""

    line: int
    facts: Facts  # the line's, for the message
    field: str
    kind: type
    target: str  # what the reference names, for the message ("": the id)
    check: Callable[[Tracked], None] | None  # more to check once it exists (a stage of a pipeline)
    check_field: str  # the field `check` is about
