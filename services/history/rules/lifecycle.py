"""What the per-aggregate lifecycle checks (`customer_lifecycle` … `pipeline_lifecycle`) share.

Each of them maps an event class to a `Rule`: called in file order with the engine, the aggregate's
`Tracked` state and the line's FACTS values, it calls the domain's rule functions (the ones the command
calls) on that state, and folds the event into it. A `Rule` sees the engine only as `Engine`: references to
other aggregates and the aggregate being checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked

Rule = Callable[..., None]  # (engine, tracked state, *FACTS values of the event class): raises to refuse


class Engine(Protocol):
    """What a lifecycle rule may ask of `engine.HistoryRules`."""

    @property
    def subject(self) -> int:
        """The id (as an int) of the aggregate whose line is being checked."""

    @property
    def occurred(self) -> int:
        """The business time of the line being checked (µs since the epoch)."""

    def refer(self, field: str, kind: type, key: int | None, check: Callable[[Tracked], None] | None = None,
              target: str = "", check_field: str = "") -> None:
        """Id `key` must name an aggregate of `kind`, now or later in the file (then `check` it)."""

    def claim(self, kind: type, external_id: str) -> None:
        """A created deal or ticket takes `external_id` ("" none): no other one of the file or the log has it."""


def require_same(field: str, given: str, held: str | None, what: str) -> None:
    """A field the command derives from the state (a deal's from_stage) must be what the state holds."""
    if given != held:
        raise Refusal(field, f"{field} {given!r} is not the {what} {held!r}")
