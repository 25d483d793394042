"""A superseded interval row (what is left where a longer earlier timeline had an interval) covers no
instant and holds nothing else."""

from __future__ import annotations

from projections.segments.rows import superseded


def test_a_superseded_interval_is_the_empty_range_with_nothing_else() -> None:
    row = superseded("c1", 7)
    assert (row.customer_id, row.seq, row.valid_from, row.valid_to) == ("c1", 7, 0, 0)
    assert set(row[4:]) == {None}
