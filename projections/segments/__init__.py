"""The customer segments read model: RFM scores, value tiers and tier membership, in business time.

`handlers` is its write side (tables, events → typed `rows`, each changed customer's timeline once per
batch), `queries` its query side (segments, members, counts, histories and movements as of any instant,
and `tier_members_sql` for other read models); the rules are `domain.segmentation`. The public names are
here, so callers import `from projections.segments import ...`.
"""

from __future__ import annotations

from projections.segments.handlers import SegmentsReadModel
from projections.segments.queries import (
    CustomerSegment,
    Membership,
    Movement,
    SegmentQueries,
    TierCount,
    tier_members_sql,
)

__all__ = ["CustomerSegment", "Membership", "Movement", "SegmentQueries", "SegmentsReadModel", "TierCount",
           "tier_members_sql"]
