"""The personal-data keys of a sharded log: each shard keeps the keys of its records beside its events (so
that forgetting someone destroys keys in the one database that holds their records), and a seal names its
record, whose id names its partition, whose shard holds the key. This opens the seals a read model keeps
(the read models live in the default shard) with the right shard's keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from domain.partitions import partition_of
from domain.personal_data import subject_of_seal
from services.keys.key_store import _SEALED_MARK, KeyStore


class ShardedKeys:
    """`unseal`, `unseal_marks` and `unseal_all_marks` of `KeyStore`, over one key store per shard."""

    def __init__(self, stores: Sequence[KeyStore], shard_map: Mapping[int, int]) -> None:
        self.stores, self.shard_map = list(stores), shard_map

    def store_of(self, subject: str) -> KeyStore:
        try:
            return self.stores[self.shard_map[partition_of(UUID(subject))]]
        except ValueError:
            return self.stores[0]  # not a record's id: nothing partitioned seals it

    def unseal(self, sealed: str) -> str:
        return self.store_of(subject_of_seal(sealed)).unseal(sealed)

    def unseal_marks(self, text: str) -> str:
        return _SEALED_MARK.sub(lambda match: self.unseal(match.group(1)), text)

    def unseal_all_marks(self, texts: list[str]) -> list[str]:
        """Each shard's keys loaded together first (a query per thousand per shard), then opened."""
        by_store: dict[int, set[str]] = {}
        for text in texts:
            for mark in _SEALED_MARK.findall(text):
                subject = subject_of_seal(mark)
                by_store.setdefault(id(self.store_of(subject)), set()).add(subject)
        for store in self.stores:
            store.preload(by_store.get(id(store), ()))
        return [self.unseal_marks(text) for text in texts]
