"""Home partitions are read from ids: an id made in a partition stays there, and ids spread evenly."""

from __future__ import annotations

from collections import Counter
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from hypothesis import given, strategies as st

from domain.partitions import PARTITIONS, in_partition, is_reference, partition_of


@given(st.integers(0, PARTITIONS - 1), st.uuids())
def test_an_id_made_in_a_partition_is_in_it_and_keeps_its_version(partition, base):
    made = in_partition(partition, base)
    assert partition_of(made) == partition
    assert made.version == base.version and made.variant == base.variant


def test_the_same_base_gives_the_same_id():
    base = uuid5(NAMESPACE_URL, "crm:salesforce:deal:006Dn00000AbCdE")
    assert in_partition(7, base) == in_partition(7, base) != in_partition(8, base)


def test_random_ids_spread_over_every_partition():
    counts = Counter(partition_of(uuid4()) for _ in range(64_000))
    assert len(counts) == PARTITIONS
    assert min(counts.values()) > 800  # 1,000 expected each; 800 is > 6 standard deviations below


@pytest.mark.parametrize("partition", [-1, PARTITIONS])
def test_a_partition_outside_the_range_is_refused(partition):
    with pytest.raises(ValueError, match="partition must be"):
        in_partition(partition)


def test_configuration_is_reference_data_and_customers_are_not():
    assert is_reference("Pipeline") and is_reference("Campaign")
    assert not is_reference("Customer") and not is_reference("Deal")
