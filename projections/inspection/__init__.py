"""The inspection read model: pipeline inspection — close dates moved (slippage), amounts and stages changed
between two instants, deals without activity for N days — and win/loss as of any instant (issue 15).

`handlers` is its write side (deals' versions and changes, activity, products, teams), `queries` its query side;
the rules are `domain.pipeline_inspection`. The public names are here.
"""

from __future__ import annotations

from projections.inspection.handlers import InspectionReadModel
from projections.inspection.queries import WINLOSS_BY, InspectionQueries, Where, require_winloss_by

__all__ = ["WINLOSS_BY", "InspectionQueries", "InspectionReadModel", "Where", "require_winloss_by"]
