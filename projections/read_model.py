"""What every read model is made of: tables, the events it handles, and a batch unit of work.

A read model's handlers read and write rows through `Rows`, a cache over its tables for one batch
of events: rows the batch will need are fetched together up front, handlers change them in memory,
and the changed rows are written back with one upsert per table, in the same transaction as the
projection's new position. The same handlers serve the live follower, a full rebuild and a replay.
A projector may carry the rows on to its next batch (see `Projector.run_batch` for when that is safe),
so the rows it has just written are not read back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, ClassVar

from projections.tables import Table
from projections.ports import Cursor

Row = Any  # dict[str, Any] (column → value), or the table's `row_type`
Key = tuple[Any, ...]
FETCH_CHUNK = 400


class Rows:
    """Rows of some tables for one batch: fetched once, changed in memory, written back once."""

    def __init__(self, cursor: Cursor, tables: Iterable[Table]) -> None:
        self._cursor = cursor
        self._tables = {t.name: t for t in tables}
        self._cache: dict[str, dict[Key, Row | None]] = {name: {} for name in self._tables}
        self._dirty: dict[str, set[Key]] = {name: set() for name in self._tables}
        self._deleted: dict[str, set[Key]] = {name: set() for name in self._tables}
        self._complete: dict[str, tuple[int, set[Key]]] = {}  # table → (prefix length, prefixes fetched whole)
        # What handlers leave for their read model's `finish`, by read model name: state of this batch,
        # not of the read model object (two threads may run one projector's batches at once).
        self.pending: dict[str, Any] = {}

    def prefetch(self, table: Table, keys: Iterable[Key]) -> None:
        cache = self._cache[table.name]
        missing = list({k for k in keys if k not in cache})
        if not missing:
            return
        for k in missing:
            cache[k] = None
        names, row_of = table.column_names, table.row_of
        for start in range(0, len(missing), FETCH_CHUNK):
            chunk = missing[start:start + FETCH_CHUNK]
            if len(table.key) == 1:
                where = f"{table.key[0]} IN ({', '.join('?' * len(chunk))})"
                params = [k[0] for k in chunk]
            else:
                one = "(" + " AND ".join(f"{k} = ?" for k in table.key) + ")"
                where = " OR ".join([one] * len(chunk))
                params = [part for k in chunk for part in k]
            self._cursor.execute(f"SELECT {', '.join(names)} FROM {table.name} WHERE {where}", params)
            for values in self._cursor.fetchall():
                row = row_of(values)
                cache[table.key_of(row)] = row

    def prefetch_prefixes(self, table: Table, prefixes: Iterable[Key]) -> None:
        """Every row whose key begins with one of `prefixes` (all of one length), one query per 400; then a key
        with such a prefix that was not found is known to be absent, without a query (the reminders read model's
        due rows of a batch's new stage entries, whose labels are known only once an event is applied)."""
        wanted = list(dict.fromkeys(prefixes))
        if not wanted:
            return
        size = len(wanted[0])
        _, complete = self._complete.setdefault(table.name, (size, set()))
        wanted = [prefix for prefix in wanted if prefix not in complete]
        cache, names, row_of = self._cache[table.name], table.column_names, table.row_of
        one = "(" + " AND ".join(f"{k} = ?" for k in table.key[:size]) + ")"
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = wanted[start:start + FETCH_CHUNK]
            self._cursor.execute(f"SELECT {', '.join(names)} FROM {table.name} WHERE {' OR '.join([one] * len(chunk))}",
                                 [part for prefix in chunk for part in prefix])
            for values in self._cursor.fetchall():
                row = row_of(values)
                cache.setdefault(table.key_of(row), row)  # a row changed in memory stays as changed
        complete.update(wanted)

    def get(self, table: Table, *key: Any) -> Row | None:
        """The row with that primary key, or None: a copy-free dict you may change and `put` back, or a row
        of the table's `row_type` whose `_replace` you `put`."""
        cache = self._cache[table.name]
        if key not in cache:
            size, complete = self._complete.get(table.name, (0, set()))
            if size and key[:size] in complete:
                return None
            self.prefetch(table, [key])
        return cache.get(key)

    def put(self, table: Table, row: Row) -> None:
        key = table.key_of(row)
        cache = self._cache[table.name]
        cache.pop(key, None)  # to the end: `trim` keeps the most recently written rows
        cache[key] = row
        self._dirty[table.name].add(key)
        self._deleted[table.name].discard(key)

    def delete(self, table: Table, *key: Any) -> None:
        """Remove the row with that primary key, if there is one, when the rows are written."""
        self._cache[table.name][key] = None
        self._dirty[table.name].discard(key)
        self._deleted[table.name].add(key)

    def select(self, sql: str, params: list[Any]) -> list[Any]:
        """Rows of a query no key lookup answers (e.g. all customers with purchases in a currency), in the
        batch's transaction: the changed rows are written first, so that it sees them."""
        self.flush()
        self._cursor.execute(sql, params)
        return list(self._cursor.fetchall())

    def bind(self, cursor: Cursor) -> Rows:
        """Read and write through `cursor` from now on (a later batch's transaction); returns self."""
        self._cursor = cursor
        return self

    def trim(self, limit: int) -> None:
        """Forget all but about `limit` rows, keeping each table's most recently written (after a flush)."""
        assert not any(self._dirty.values()) and not any(self._deleted.values()), "flush before trimming"
        self._complete.clear()  # rows forgotten below may have been fetched by a prefix
        total = sum(len(cache) for cache in self._cache.values())
        if total <= limit:
            return
        for cache in self._cache.values():
            for key in list(islice(cache, len(cache) - len(cache) * limit // total)):
                del cache[key]

    def flush(self, cursor: Cursor | None = None) -> int:
        """Write every changed row back (through `cursor`, default the one rows were read with)."""
        cursor = cursor or self._cursor
        written = 0
        for name, keys in self._deleted.items():
            if keys:
                table = self._tables[name]
                where = " AND ".join(f"{column} = ?" for column in table.key)
                cursor.executemany(f"DELETE FROM {table.name} WHERE {where}", list(keys))
                written += len(keys)
                keys.clear()
        for name, keys in self._dirty.items():
            if not keys:
                continue
            table = self._tables[name]
            cache = self._cache[name]
            values = table.row_values
            rows = [values(cache[k]) for k in keys]  # type: ignore[arg-type]
            cursor.upsert(table, rows)
            written += len(rows)
            keys.clear()
        return written


class ReadModel:
    """Base of read models: name (its tracking key), tables, and a handler per event class."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    # Bumped when what the handlers write changes meaning while the tables' DDL stays (a new key in a JSON
    # column): like a DDL change, it makes the projector drop and rebuild the read model's tables.
    revision: ClassVar[int] = 0
    # The installation's settings the handlers depend on, by name of the constructor's parameter (the funnel's
    # "zone": its tallies' days): services make the read model with them (`model_settings.configured`).
    settings: ClassVar[tuple[str, ...]] = ()

    def built_with(self) -> str:
        """What the handlers write depends on besides the code (e.g. `time zone Asia/Shanghai`): part of the
        schema fingerprint, so that changing the setting rebuilds the read model rather than mixing two."""
        return ""

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        """Event class → handler(event, rows)."""
        raise NotImplementedError

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """Fetch up front the rows a batch of events will read (optional; `Rows.get` fetches lazily)."""

    def finish(self, rows: Rows) -> None:
        """After a batch's events were handled, before its rows are written: work done once per batch
        rather than once per event (optional)."""
