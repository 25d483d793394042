"""The attribution read model: each won deal's value shared over the campaign touches before it, under every
multi-touch model, per campaign, channel and variant; and CAC and CLV per channel and acquisition cohort, as
of any instant. `handlers.py` is its write side, `queries.py` its query side; the rules are
`domain.attribution`'s and `domain.marketing`'s."""

from __future__ import annotations

from projections.attribution.handlers import AttributionReadModel
from projections.attribution.queries import (AXES, COHORT_GRAINS, AttributionQueries, require_axis,
                                             require_cohort_grain, require_half_life)

__all__ = ["AXES", "COHORT_GRAINS", "AttributionQueries", "AttributionReadModel", "require_axis",
           "require_cohort_grain", "require_half_life"]
