"""The variants read model: each campaign variant's funnel (exposure → response → lead → qualified → customer
→ won, and revenue) as of any instant, with the significance of each comparison (`domain.experiments`).

Its own read model rather than more tables of the campaigns one: the campaigns read model sums tallies per
campaign and is folded in bulk (services/bulk), and none of its figures need a variant; a separate one is
rebuilt, verified and dropped on its own, and leaves the campaigns fold and its benchmark untouched.
`handlers` is its write side, `queries` its query side; the public names are here.
"""

from __future__ import annotations

from projections.variants.handlers import VariantsReadModel
from projections.variants.queries import (DEFAULT_STEP, STEPS, Decision, VariantFunnel, VariantQueries, VariantsReport,
                                          require_step)

__all__ = ["DEFAULT_STEP", "STEPS", "Decision", "VariantFunnel", "VariantQueries", "VariantsReadModel",
           "VariantsReport", "require_step"]
