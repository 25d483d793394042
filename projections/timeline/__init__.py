"""The customer timeline read model: every event about a customer, in business-time order, as of any instant.

`summaries` says what each event means in one line; `handlers` (write side) files it as a typed row of
`rows`; `queries` reads a customer's timeline back. The names callers use are re-exported here.
"""

from __future__ import annotations

from projections.timeline.handlers import TimelineReadModel
from projections.timeline.queries import Timeline, TimelineEntry, TimelineQueries, UnknownCustomer

__all__ = ["Timeline", "TimelineEntry", "TimelineQueries", "TimelineReadModel", "UnknownCustomer"]
