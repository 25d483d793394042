"""Is this server ready to answer from its read models? Not while one is stopped, nor while one lags too far.

`GET /health` answers 503 with the reasons while it is not (a load balancer then sends queries to a server
that is ready, and an operator sees which read model and why). A stopped read model's answers would be
incomplete; a lagging one's would be stale by more than the operator accepts: `CRM_READY_MAX_LAG` events,
when set (10,000 is ≈ 1 s of the funnel projector's measured ≈ 10k events/s at full speed: a follower that
keeps up applies a command's events within ≈ 0.1 s). Unset, the lag is not judged: every server shares the
read store, so a lag (after an upgrade that rebuilds a read model, a large import, a rebuild) would take all
of them out of a load balancer at once, commands included, which need no read model. The lag counts events
of the log the read model has not applied yet; /metrics shows it either way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.projection_runtime.projector import Failure
from services.settings import SettingsError

READY_MAX_LAG_VARIABLE = "CRM_READY_MAX_LAG"
DEFAULT_READY_MAX_LAG: int | None = None  # not judged unless set (see the module's docstring)


def ready_max_lag_from_environment(environ: Mapping[str, str] = os.environ) -> int | None:
    """CRM_READY_MAX_LAG: the most events a read model may lag while the server counts as ready (None: any)."""
    text = environ.get(READY_MAX_LAG_VARIABLE, "").strip()
    if not text:
        return DEFAULT_READY_MAX_LAG
    if not text.isdigit():
        raise SettingsError(f"{READY_MAX_LAG_VARIABLE} must be a whole number of events (0 or more), "
                                    f"not {text!r}")
    return int(text)


class ReadModelState(Protocol):
    """What readiness looks at: a `ProjectionStatus` of the follower (head − position), or a read model fed per
    partition whose `lag` is its largest partition's."""

    @property
    def name(self) -> str: ...
    @property
    def lag(self) -> int: ...
    @property
    def failure(self) -> Failure | None: ...


@dataclass(frozen=True)
class Readiness:
    """The read models' states against the lag allowed."""

    statuses: Sequence[ReadModelState]
    max_lag: int | None  # None: the lag is not judged (unset, or over shards: see the module's docstring)

    @property
    def reasons(self) -> dict[str, str]:
        """Why each read model that keeps the server from being ready does (none: ready)."""
        found: dict[str, str] = {}
        for status in self.statuses:
            if status.failure is not None:
                found[status.name] = f"stopped: {status.failure.message()}"
            elif self.max_lag is not None and status.lag > self.max_lag:
                found[status.name] = (f"{status.lag} events behind the log, more than {READY_MAX_LAG_VARIABLE}="
                                      f"{self.max_lag}")
        return found

    @property
    def ready(self) -> bool:
        return not self.reasons
