"""The segment changes read model: which value tier was last announced for each customer, and every
announcement (`SegmentChange.Recorded`), as of any instant.

`handlers` is its write side, `queries` its query side: the announcements made by an instant, and the segment
process's work list (`due`: customers whose tier now, in the segments read model, differs from the one last
announced) with the instant the next tier change falls due by ageing alone (`next_change_after`). The rules
are `domain.segment_change_rules`.
"""

from __future__ import annotations

from projections.segment_changes.handlers import SegmentChangesReadModel
from projections.segment_changes.queries import Announcement, SegmentChangeQueries

__all__ = ["Announcement", "SegmentChangeQueries", "SegmentChangesReadModel"]
