"""Home partitions: which slice of the log a record's events belong to, read from the record's id.

What the read models need is not one global order but each customer's events — the customer, the leads it
came from, its deals and tickets — together and in order (../shared/SCALE.md: reordering per customer
partition changed no funnel figure). So every record has a *home partition*, one of a fixed number of
virtual partitions, and everything about one customer shares it: a lead gets one when captured, the
customer converted from it inherits the lead's, deals and tickets their customer's. The partition is the
low 6 bits of the record's UUID: a new record's id is made in its parent's partition (`in_partition`), so
routing a command, publishing an event or picking the consumer of a Kafka partition needs no lookup — the
id says where it lives (like Instagram's sharded ids, which carry their shard). Those bits are random in
uuid4 and uuid5 ids (the version and variant bits are elsewhere), so records spread evenly.

Reference data — pipelines, vocabularies, exchange rates, campaigns — belongs to no partition: every shard
holds it, and read models see it in every partition (`is_reference`).

PARTITIONS is part of the log's format, fixed forever: changing it would move every record. 64 is more
than the shards or consumers one installation runs (a Kafka partition is the unit of parallelism, so 64
allows 64 consumers) and few enough that per-partition offsets stay a small table (64 rows per read model).
Resharding moves whole partitions between databases; ids never change.
"""

from __future__ import annotations

from uuid import UUID, uuid4

PARTITIONS = 64
_MASK = PARTITIONS - 1  # a power of two: the partition is the id's low bits
REFERENCE_KINDS = ("Pipeline", "Vocabulary", "ExchangeRate", "Campaign", "Target", "OwnerTeam")  # class names


def partition_of(record_id: UUID) -> int:
    """The home partition of the record with this id (0 … PARTITIONS − 1)."""
    return record_id.int & _MASK


def in_partition(partition: int, base: UUID | None = None) -> UUID:
    """An id in `partition`: `base` (a fresh uuid4 when None; a uuid5 for an imported record, so that the
    same external id still always gives the same id) with its low bits set to the partition."""
    if not 0 <= partition < PARTITIONS:
        raise ValueError(f"partition must be 0 … {PARTITIONS - 1}, got {partition}")
    return UUID(int=((base or uuid4()).int & ~_MASK) | partition)


def is_reference(aggregate_class_name: str) -> bool:
    """Whether records of this aggregate class are reference data, held by every shard (no partition)."""
    return aggregate_class_name in REFERENCE_KINDS
