"""What read models need from the world outside them, as protocols: a database to write rows to and query,
and a way to open sealed personal text. Adapters (`services.storage.read_model_store`,
`services.keys.key_store`) implement them; read models never import those adapters (the layer contract in
pyproject.toml checks it), so a read model can be tested with any store and runs under any runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from projections.tables import Table


class Cursor(Protocol):
    """A DB-API cursor with `?` placeholders that can also upsert whole rows of a table."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...
    def upsert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None: ...


class Store(Protocol):
    """The database read models live in: one transaction at a time for writing, `query` for reading."""

    def transaction(self) -> AbstractContextManager[Cursor]: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def snapshot(self) -> AbstractContextManager[None]: ...  # the block's reads see one state


Unseal = Callable[[str], str]
"""Opens each seal in a stored text (`domain.personal_data.mark`); a forgotten person's reads "(forgotten)"."""

UnsealAll = Callable[[list[str]], list[str]]
"""`Unseal` of many texts at once (their keys loaded together)."""
