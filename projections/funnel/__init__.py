"""The funnel read model: how pipeline items (deals, leads, tickets) move through their stages, as of any
instant.

`steps` maps events to funnel steps; `handlers` (write side) turns them into the typed rows of `rows`
and the pre-summed tallies of `tally`; `queries` answers from those tables, `fold` by replaying the log
from scratch; both build the same `report`. The names callers use are re-exported here.
"""

from __future__ import annotations

from projections.funnel.fold import FunnelReplay
from projections.funnel.handlers import FunnelReadModel
from projections.funnel.queries import FunnelQueries
from projections.funnel.report import (FlowRow, FunnelFacts, FunnelFilters, FunnelReport, StageRow, StuckItem,
                                       build_report, percentile)
from projections.funnel.steps import FUNNEL_EVENTS

__all__ = [
    "FUNNEL_EVENTS",
    "FlowRow",
    "FunnelFacts",
    "FunnelFilters",
    "FunnelQueries",
    "FunnelReadModel",
    "FunnelReplay",
    "FunnelReport",
    "StageRow",
    "StuckItem",
    "build_report",
    "percentile",
]
