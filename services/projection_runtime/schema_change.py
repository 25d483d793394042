"""A read model whose tables another version of the code made, while `crm serve` builds this version online.

A release may change a read model's tables (its `schema_fingerprint`, stored in `projection_schemas`). A start
used to drop them and let the follower build again from position 0: for minutes the queries of that read model
answered from empty, then partial tables, as if they were the truth. Now `crm serve` keeps the old tables, its
background projector builds the new version online (`online_rebuild.py`) and swaps it in; until then the stored
fingerprint is the old one, so `freshness()` knows, from the row it reads anyway, that this read model's tables
are not the ones the running code reads, and refuses with `ReadModelRebuilding`: HTTP 503 with `Retry-After`,
the CLI exit 1, with the progress (events applied of the log's, and an ETA once two readings show a rate).
The other read models answer as before.

The ETA is estimated by each reading process from its own successive readings of the build's progress row
(`projection_online_rebuilds`): the process that builds may be another worker, so none shares memory with it,
and the progress row stays one small write per batch.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from projections.read_model import ReadModel
from services.projection_runtime.model_settings import configured, settings_key
from services.projection_runtime.projector import schema_fingerprint, set_up_tables
from services.projection_runtime.rebuild_record import online_progress
from services.storage.read_model_store import ReadModelStore

RETRY_AFTER_DEFAULT = 5  # seconds, while no rate is known yet: a build applies ≈ 5–8k events/s
RETRY_AFTER_LONGEST = 60  # seconds: a client asks again at least each minute, whatever the ETA


def changed_schemas(store: ReadModelStore, models: Sequence[ReadModel]) -> list[str]:
    """The names of `models` built before whose stored tables are not the ones this code defines (the rule of
    `set_up_tables`, which would drop them): the ones a start builds online instead."""
    set_up_tables(store, [])  # the bookkeeping tables, for a first start
    known = dict(store.query("SELECT name, fingerprint FROM projection_schemas"))
    started = {name for (name,) in store.query("SELECT name FROM projection_positions")}
    return [model.name for model in models
            if (model.name in known or model.name in started) and known.get(model.name) != schema_fingerprint(model)]


def code_fingerprints(names: Sequence[str]) -> dict[str, str]:
    """The fingerprints of the named read models in this code. Each read model `x` is `projections.x`'s
    ReadModel (the registry's too: test_schema_change checks it); found there rather than through the registry,
    which imports every read model (≈ 0.1 s) where a CLI query has imported its own one already."""
    return {name: _fingerprint(model, model.revision, id(model.tables), settings_key(model)) for name in names
            if (model := read_model_class(name)) is not None}


@functools.cache
def read_model_class(name: str) -> type[ReadModel] | None:
    """The ReadModel class `projections.<name>` exports under that name (None: no such slice)."""
    try:
        module = importlib.import_module(f"projections.{name}")
    except ModuleNotFoundError:
        return None
    found = [value for value in vars(module).values() if isinstance(value, type) and issubclass(value, ReadModel)
             and getattr(value, "name", None) == name]
    return found[0] if found else None


@functools.lru_cache(maxsize=64)
def _fingerprint(model: type[ReadModel], revision: int, tables: int, settings: tuple[str, ...]) -> str:
    """Cached by what it digests (its tables by identity, the settings it is made with: a changed
    CRM_TIME_ZONE is a changed fingerprint): rendering the funnel's DDL takes ≈ 0.2 ms."""
    return schema_fingerprint(configured(model))


class ReadModelRebuilding(RuntimeError):
    """Read models whose new version is being built online: their current tables are another version's."""

    def __init__(self, names: Sequence[str], applied: dict[str, int], head: int, eta: float | None) -> None:
        self.names, self.applied, self.head, self.eta = list(names), applied, head, eta
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        done = [f"{name}: {self.applied[name]:,} of {self.head:,} events applied "
                f"({100 * self.applied[name] // max(self.head, 1)} %)" for name in self.names if name in self.applied]
        progress = "; ".join(done) if done else "the build has not reported progress yet"
        eta = f", {_duration(self.eta)} left" if self.eta is not None else ""
        return (f"read model(s) {', '.join(self.names)} are being rebuilt for this version of their tables "
                f"({progress}{eta}); their answers would be incomplete meanwhile: try again in "
                f"{self.retry_after} s. The other read models answer. (Their tables or the settings they were "
                "built with, e.g. CRM_TIME_ZONE, differ from this process's: `crm serve` rebuilds them online; "
                "without it, `crm projections catch-up` does)")

    @property
    def retry_after(self) -> int:
        return RETRY_AFTER_DEFAULT if self.eta is None else max(1, min(int(self.eta) + 1, RETRY_AFTER_LONGEST))

    def detail(self) -> dict[str, Any]:
        return {"read_models": self.names, "applied": self.applied, "total": self.head,
                "eta_seconds": None if self.eta is None else round(self.eta, 1)}


def require_current_schemas(store: ReadModelStore, stored: dict[str, str | None], head: int) -> None:
    """Raise ReadModelRebuilding for the read models whose `stored` fingerprint is not this code's."""
    code = code_fingerprints(list(stored))
    rebuilding = [name for name, fingerprint in stored.items() if name in code and fingerprint != code[name]]
    if rebuilding:
        applied = online_progress(store, rebuilding)
        raise ReadModelRebuilding(rebuilding, applied, head, _RATES.eta(applied, head))


def rebuilding(store: ReadModelStore, names: Sequence[str]) -> dict[str, int | None]:
    """The named read models whose stored tables are another version's (being rebuilt), each with the events
    its online build has applied (None: not reported yet) — for `/health` (one small read, two while building)."""
    stored = dict(store.query(f"SELECT name, fingerprint FROM projection_schemas WHERE name IN "
                              f"({', '.join('?' * len(names))})", list(names)))
    code = code_fingerprints(list(stored))
    changed = [name for name, fingerprint in stored.items() if name in code and fingerprint != code[name]]
    applied = online_progress(store, changed) if changed else {}
    return {name: applied.get(name) for name in changed}


class _Rates:
    """Events per second of a build, from this process's first and latest reading of its progress."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[float, int]] = {}
        self.lock = threading.Lock()

    def eta(self, applied: dict[str, int], head: int) -> float | None:
        now, etas = time.monotonic(), []
        with self.lock:
            for name, done in applied.items():
                since, at_first = self.first.setdefault(name, (now, done))
                if done < at_first:  # another build started since
                    self.first[name] = (now, done)
                elif done > at_first and now > since:
                    etas.append(max(head - done, 0) / ((done - at_first) / (now - since)))
        return max(etas) if etas else None


_RATES = _Rates()


def _duration(seconds: float | None) -> str:
    seconds = int(seconds or 0)
    if seconds < 1:
        return "under 1 s"  # the last batch, or the swap
    return f"about {seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"about {seconds} s"
