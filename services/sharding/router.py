"""`ShardedApplication`: one `CrmApplication` per shard, behind the interface the gateways use of one.

A command runs on the shard of its record's home partition (`routing.route`), with that shard's own
application, recorder and gap-free order — unchanged code, so everything one database guarantees holds per
shard. Reference data is written to the default shard, whose version check decides, and copied from there
to the others (`reference`). Reads by id go to the record's shard. The read models live in the default
shard's database (`database`), as they live in the one database without shards.

What has no meaning across shards is not offered: there is no single log to read in order (`read_log` gives
each event once, shard after shard, with each shard's own positions) and no recorder or mapper of "the" log
(`NotSharded`); the projectors of a sharded installation consume Kafka (one relay per shard, `apps`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from domain.base import CrmAggregate, Meta
from domain.partitions import PARTITIONS, is_reference, partition_of
from domain.pipeline import Pipeline
from domain.vocabulary import Vocabularies, Vocabulary
from services.application import CrmApplication, LastWrite, NotFound
from services.command_receipts import Receipt
from services.commands import Command, ForgetCustomer, RecordExchangeRate
from services.keys.sharded import ShardedKeys
from services.settings import Database, SettingsError, reporting_currency_from_environment
from services.sharding import reference, written
from services.sharding.routing import Route, random_partition, route
from services.sharding.shard_map import load_map
from services.sharding.shard_settings import SHARD_URLS_VARIABLE

A = TypeVar("A", bound=CrmAggregate)
log = logging.getLogger(__name__)


def _is_reference_event(event: Any) -> bool:
    return is_reference(type(event).__qualname__.partition(".")[0])  # "Pipeline.Defined" → Pipeline


class Shard(CrmApplication):
    """One shard's application: today's, plus a hook that hands every saved reference event to the router
    (on the default shard: to copy it to the others)."""

    name = CrmApplication.name  # eventsourcing names a subclass after itself: its log would be shard_events
    on_reference_saved: Any = None  # Callable[[list[UUID], list[DomainEvent]], None]
    held_on_shards: Any = None  # Callable[[list[UUID]], UUID | None]: set by the router
    index = 0  # its place in CRM_SHARD_URLS

    def _held(self, candidates: list[UUID]) -> UUID | None:
        """An external id's possible ids span every partition, so every shard is asked (`held_on_shards`)."""
        return super()._held(candidates) if self.held_on_shards is None else self.held_on_shards(candidates)

    def _notify(self, recordings: list[Any]) -> None:
        super()._notify(recordings)
        written.saved(self.index, max((r.notification.id or 0 for r in recordings), default=0))
        if self.on_reference_saved is None:
            return
        saved = [r.domain_event for r in recordings if _is_reference_event(r.domain_event)]
        if saved:
            self.on_reference_saved(list(dict.fromkeys(e.originator_id for e in saved)), saved)


class NotSharded(SettingsError):
    """Asked of the router what only one database's application can do."""


_OWN = frozenset({"apps", "default", "database", "shard_map", "keys", "last_write", "reporting_currency",
                  "synced_at_start", "_unsynced"})  # set in __init__: missing only while it fails


class ShardedApplication:
    """The CRM over several databases; `handle(command, meta)` as `CrmApplication.handle`."""

    _staged: dict[int, CrmApplication] | None = None  # a staged view's per-shard views (see `staged`)
    _asked_key: str | None = None  # the idempotency key a staged view was asked about (see `route`)

    def __init__(self, shards: Sequence[Database], sync: bool = True) -> None:
        self.apps: list[Shard] = []
        try:
            for database in shards:
                self.apps.append(Shard(database))
                self.apps[-1].index = len(self.apps) - 1
            self.shard_map = load_map(shards[0], len(shards))
        except BaseException:
            self.close()
            raise
        self.database = shards[0]  # the read models and the shard map live here
        self.default = self.apps[0]
        self.default.on_reference_saved = self._copy_reference
        for app in self.apps:
            app.held_on_shards = self._held_on_shards
        self.keys = ShardedKeys([app.keys for app in self.apps], self.shard_map)
        self.last_write = LastWrite()  # no log position means anything across shards: never advanced
        self.reporting_currency = reporting_currency_from_environment()
        self._unsynced: set[UUID] = set()  # reference aggregates a shard refused a copy of (retried)
        self.synced_at_start = self.sync() if sync else [0] * len(self.apps)  # events copied, per shard
        if any(self.synced_at_start):
            log.warning("copied reference events a process left missing (per shard: %s)", self.synced_at_start)

    # --- where things are ------------------------------------------------------------------

    def shard_of(self, partition: int) -> int:
        return self.shard_map[partition]

    def app_of(self, record_id: UUID) -> CrmApplication:
        """The application of the shard holding the record with this id (not reference data)."""
        return self._app(self.shard_map[partition_of(record_id)])

    def _app(self, shard: int) -> CrmApplication:
        if self._staged is None:
            return self.apps[shard]
        if shard not in self._staged:
            self._staged[shard] = self.apps[shard].staged()
        return self._staged[shard]

    def _held_on_shards(self, candidates: list[UUID]) -> UUID | None:
        """The first of `candidates` some shard holds, each asked about its own partitions' (one query each)."""
        by_shard: dict[int, list[UUID]] = {}
        for candidate in candidates:
            by_shard.setdefault(self.shard_map[partition_of(candidate)], []).append(candidate)
        found = set().union(*(self.apps[shard].recorder.held_ids(ids)  # type: ignore[attr-defined]
                              for shard, ids in by_shard.items()))
        return next((candidate for candidate in candidates if candidate in found), None)

    # --- commands ----------------------------------------------------------------------------

    def route(self, command: Command) -> Route:
        """Where `command` goes (see routing); a staged view answering an idempotency key places a new record
        by the key, so that a retry of it meets the first try's receipt on the same shard."""
        return route(command, random_partition if self._asked_key is None else self._partition_of_key)

    def _partition_of_key(self) -> int:
        digest = hashlib.blake2b(str(self._asked_key).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % PARTITIONS

    def handle(self, command: Command, meta: Meta) -> Any:
        chosen = self.route(command)
        if chosen.partition is None:
            self._retry_unsynced()
            written.routed(self.reference_partition(), 0)
            return self._app(0).handle(chosen.command, meta)
        written.routed(chosen.partition, self.shard_of(chosen.partition))
        answer = self._app(self.shard_of(chosen.partition)).handle(chosen.command, meta)
        if isinstance(chosen.command, ForgetCustomer):
            self._forget_on_other_shards(chosen.command.customer_id, self.shard_of(chosen.partition))
        return answer

    def _forget_on_other_shards(self, customer_id: UUID, home: int) -> None:
        """The customer's shard (`home`) destroyed there the keys of the customer, of the leads it holds that
        were converted into them and of the records bound to them. A record bound to them may sit on another
        shard (a deal, a ticket or a converted lead imported from before home partitions, where its id names
        another partition), so each other shard does the same with what it holds: a key lives on its record's
        shard, and only deals and tickets are bound to another record (their customer), so each shard's keys
        are destroyed once and each shard's conversions read once."""
        for shard, app in enumerate(self.apps):
            if shard != home:
                app.keys.destroy([str(customer_id), *map(str, app.leads_converted_into(customer_id))])

    def reference_partition(self) -> int | None:
        """Where a reference change is read back: the first partition of the default shard, which writes it
        first and whose relay publishes it there (a read model applies it from whichever partition brings it
        first, so one partition applied means the read model has it)."""
        return min((p for p, shard in self.shard_map.items() if shard == 0), default=None)

    def record_exchange_rates(self, commands: Sequence[RecordExchangeRate], meta: Meta) -> list[str]:
        written.routed(self.reference_partition(), 0)
        return self._app(0).record_exchange_rates(commands, meta)  # type: ignore[no-any-return]

    def ensure_default_pipelines(self, meta: Meta | None = None) -> None:
        """Defined once on the default shard and copied to every other as it is saved (one a process died
        before copying is completed by the next start's `sync`)."""
        self.default.ensure_default_pipelines(meta)

    # --- reference data: default first, then every other shard ---------------------------------

    def _copy_reference(self, aggregate_ids: list[UUID], saved: Sequence[Any] = ()) -> None:
        for target in self.apps[1:]:
            try:
                reference.copy_aggregates(self.default, target, aggregate_ids, saved=saved)
            except Exception as error:  # the write stands (the default shard decided): heal later
                log.error("could not copy reference data %s to shard %s (%s); `crm shards sync` copies it",
                          ", ".join(map(str, aggregate_ids)), target.database.url.split("@")[-1], error)
                self._unsynced.update(aggregate_ids)
        for app in self.apps:
            app._vocabularies = None  # a vocabulary changed: read it again on every shard's next command

    def _retry_unsynced(self) -> None:
        if self._unsynced:
            pending = sorted(self._unsynced)
            self._unsynced.clear()  # in place: staged views share the set
            self._copy_reference(pending)

    def unsynced(self) -> int:
        """Reference aggregates a shard refused a copy of, waiting for the next reference write or `sync`
        (a metric: normally 0; above 0, some shard reads an older pipeline, vocabulary, rate or campaign)."""
        return len(self._unsynced)

    def sync(self) -> list[int]:
        """Copy every reference event the default shard has and another shard lacks (after a process died
        between two shards); the number of events copied to each shard, the default's 0 first."""
        self._unsynced.clear()
        return [0, *reference.sync_reference_data(self.default, self.apps[1:])]

    # --- idempotent commands: the events and the receipt on the command's shard --------------------

    def staged(self) -> ShardedApplication:
        view = copy.copy(self)
        view._staged, view._asked_key = {}, None
        return view

    def receipt(self, principal: str, key: str) -> Receipt | None:
        """The receipt of a key, whichever shard its command ran on (one small query per shard)."""
        if self._staged is not None:
            self._asked_key = f"{principal}\x00{key}"
        for app in self.apps:
            found = app.receipt(principal, key)
            if found is not None:
                return found
        return None

    def commit(self, receipt: Receipt) -> None:
        assert self._staged is not None, "commit() belongs to a staged() view"
        used = [view for view in self._staged.values() if view._staged]
        assert len(used) <= 1, "a command never writes to two shards"
        (used[0] if used else self._app(self._receipt_shard())).commit(receipt)

    def keep_refusal(self, receipt: Receipt) -> Receipt | None:
        return self.apps[self._receipt_shard()].keep_refusal(receipt)

    def _receipt_shard(self) -> int:
        """A receipt without events: on the shard the command was routed to, else the default."""
        return next(iter(self._staged), 0) if self._staged else 0

    def prune_receipts(self, older_than: timedelta) -> int:
        return sum(app.prune_receipts(older_than) for app in self.apps)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, aggregate_type: type[A], aggregate_id: UUID) -> A:
        if is_reference(aggregate_type.__name__):
            return self.default.get(aggregate_type, aggregate_id)
        return self.app_of(aggregate_id).get(aggregate_type, aggregate_id)

    def history(self, aggregate_id: UUID) -> Sequence[Any]:
        """A record's events from its shard; reference data's from the default shard."""
        try:
            return self.app_of(aggregate_id).history(aggregate_id)
        except NotFound:
            return self.default.history(aggregate_id)

    def pipeline(self, key: str) -> Pipeline:
        return self.default.pipeline(key)

    def vocabulary(self, kind: str) -> Vocabulary | None:
        return self.default.vocabulary(kind)

    def vocabularies(self, fresh: bool = False) -> Vocabularies:
        return self.default.vocabularies(fresh)

    def event_count(self) -> int:
        """Events in all shards (each shard's head: its highest notification id)."""
        return sum(self.event_counts())

    def event_counts(self) -> list[int]:
        return [app.event_count() for app in self.apps]

    def read_log(self, topics: Sequence[str] = (), batch: int = 2000, start: int = 1) -> Iterator[tuple[int, Any]]:
        """Every event once: shard after shard, each in its own order, with its own positions (there is no
        order across shards: only a caller that wants each event once, in no particular order, may use it),
        reference data from the default shard only (the others hold copies)."""
        yield from self.default.read_log(topics, batch, start)
        for app in self.apps[1:]:
            yield from ((position, event) for position, event in app.read_log(topics, batch, start)
                        if not _is_reference_event(event))

    def __getattr__(self, name: str) -> Any:
        """What only a single log has (its recorder, mapper, repository: the local projectors, anything reading
        "the" log) is refused with a sentence, which the CLI prints, rather than done on one shard. (`crm import`
        over shards: `services.sharding.history_import`.)"""
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        raise NotSharded(f"this needs the one event log of a single database ({name}); with {SHARD_URLS_VARIABLE} "
                         "set, run it per shard (CRM_DATABASE_URL = one shard) or feed the read models with "
                         "`crm projections consume`")

    def close(self) -> None:
        if self._staged is not None:
            return  # a staged view shares its application's connections
        for app in self.apps:
            app.close()
