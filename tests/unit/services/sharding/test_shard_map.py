"""The partition → shard table: p mod n by default; a table that disagrees with the shards configured stops
the start with a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.partitions import PARTITIONS
from services.settings import database_from_url
from services.sharding.shard_map import ShardMapMismatch, check_map, default_map, load_map, partition_ranges


def test_default_map_spreads_partitions_evenly() -> None:
    mapping = default_map(3)
    assert [list(mapping.values()).count(s) for s in range(3)] == [22, 21, 21]
    assert mapping[0] == 0 and mapping[4] == 1 and mapping[63] == 0
    assert check_map(mapping, 3) == mapping


def test_a_partition_on_a_shard_not_configured_is_refused() -> None:
    with pytest.raises(ShardMapMismatch, match="on shard 2, but CRM_SHARD_URLS lists 2 shards"):
        check_map(default_map(3), 2)


def test_a_configured_shard_without_partitions_is_refused() -> None:
    with pytest.raises(ShardMapMismatch, match="no partition on shard.*3"):
        check_map(default_map(3), 4)


def test_missing_partitions_are_refused() -> None:
    mapping = {p: 0 for p in range(PARTITIONS) if p not in (5, 6, 7, 9)}
    with pytest.raises(ShardMapMismatch, match="partitions 5-7, 9"):
        check_map(mapping, 1)


def test_partition_ranges_are_compact() -> None:
    assert partition_ranges({0: 0, 1: 0, 2: 1, 3: 0, 4: 0}, 0) == "0-1, 3-4"
    assert partition_ranges(default_map(3), 1) == "1-61 every 3rd"
    assert partition_ranges(default_map(1), 0) == "0-63"


def test_sqlite_keeps_the_table_of_its_first_start(tmp_path: Path) -> None:
    default = database_from_url(f"sqlite:///{tmp_path}/shard0.db")
    assert load_map(default, 3) == default_map(3)
    assert load_map(default, 3) == default_map(3)  # read again, unchanged
    with pytest.raises(ShardMapMismatch, match="lists 2 shards"):
        load_map(default, 2)  # a shard dropped from the list: its partitions would be lost
