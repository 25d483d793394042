"""What every `crm` command shares: consoles, opening the log and read store, error handling, times."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone, tzinfo
from uuid import UUID

import typer
from rich.console import Console
from rich.text import Text

from domain.errors import DomainError
from domain.periods import zone_named
from services.application import ConcurrencyConflict, CrmApplication, NotFound
from services.projection_runtime.freshness import ReadModelNotBuilt, freshness
from services.projection_runtime.projector import FeederConflict, ReadModelStopped
from services.storage.read_model_store import ReadModelStore
from services.settings import SettingsError, time_zone_from_environment
from services.sharding.bootstrap import open_application
from projections.external_ids import AmbiguousId, ExternalIdQueries, UnknownId
from projections.external_ids.queries import as_uuid

RECORD_ID_HELP = "its UUID, its external id source:id, or the bare id when unique"

# Without markup nor emoji codes: what a command prints holds user text (a mapping's "[files.columns]", a header
# "root:x:0", a customer "[VIP] 张三" in a table), which Rich would otherwise eat or turn into emoji; styles are
# given as `Text` styles instead (review12 P3-16).
console = Console(markup=False, emoji=False)
errors = Console(stderr=True, markup=False, emoji=False)


def fail(message: str) -> typer.Exit:
    errors.print(Text.assemble(("error:", "red"), " ", message))
    return typer.Exit(1)


def start_logging() -> None:
    """Log lines on stderr for a process that runs unattended (CRM_LOG_FORMAT: text or json)."""
    from services.healing import log_to_stderr  # here: it imports psycopg, which a query on SQLite need not

    try:
        log_to_stderr()
    except SettingsError as error:
        raise fail(str(error)) from None


def run_unattended(what: str, started: str, run_until_stopped: Callable[..., None], poll: float) -> None:
    """Run an unattended process (`crm reminders run`, `crm segments run`) on the configured log until SIGTERM or
    Ctrl-C: `run_until_stopped(app, stop, poll=poll)`, logging on stderr; one log database only, for now."""
    import signal
    import threading

    from services.sharding.router import ShardedApplication

    start_logging()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with crm_application() as crm:
        if isinstance(crm, ShardedApplication):
            raise fail(f"{what} works on one log database for now (CRM_SHARD_URLS is set)")
        console.print(started)
        run_until_stopped(crm, stop, poll=poll)


@contextmanager
def crm_application() -> Iterator[CrmApplication]:
    """Open the configured event log; turn every refusal into a message and exit code 1."""
    try:
        application = open_application(sync=False)  # one database, or the shards of CRM_SHARD_URLS
        try:
            yield application
        finally:
            application.close()
    except _refusals() as error:
        raise fail(str(error)) from None


def _refusals() -> tuple[type[Exception], ...]:
    """What `crm_application` turns into a message; evaluated only when an exception leaves a command: the
    registry imports every read model (≈ 0.1 s), and only code that imported it can raise UnknownReadModel."""
    from services.projection_runtime.registry import UnknownReadModel
    from services.projection_runtime.schema_change import ReadModelRebuilding

    return (DomainError, NotFound, ConcurrencyConflict, SettingsError, UnknownReadModel, ReadModelStopped,
            ReadModelNotBuilt, FeederConflict, ReadModelRebuilding)


@contextmanager
def read_store(app: CrmApplication) -> Iterator[ReadModelStore]:
    store = ReadModelStore(app.database)
    try:
        yield store
    finally:
        store.close()


def record_id(app: CrmApplication, kind: str, text: str) -> UUID:
    """The id of the `kind` record `text` names: a UUID as it is, else through the external ids read model
    (`source:id`, or a bare id one record has); exit 1 saying why when none or several do."""
    uuid = as_uuid(text)
    if uuid is not None:
        return uuid
    with read_store(app) as store:
        note_freshness(app, store, ["external_ids"])
        try:
            return ExternalIdQueries(store).resolve(kind, text)
        except (UnknownId, AmbiguousId) as error:
            raise fail(str(error)) from None


def note_freshness(app: CrmApplication, store: ReadModelStore, names: Sequence[str]) -> None:
    """A report answers from what a projector has applied, never catching up itself (a query writes
    nothing): say on stderr when that lags the log. Raises ReadModelStopped / ReadModelNotBuilt."""
    found = freshness(app, store, names)
    if found.lag:
        errors.print(Text.assemble(("note:", "yellow"), f" read models {', '.join(names)} have applied the log up to "
                                   f"position {found.position:,} of {found.head:,} ({found.lag:,} behind): run `crm "
                                   "projections catch-up`, or keep `crm projections follow` running"))


def parse_instant(text: str, zone: tzinfo | None = None) -> datetime:
    """ISO 8601 date or date-time; without an offset it is `zone`'s wall time (default the installation's,
    CRM_TIME_ZONE: a plain date is the start of that day there); 'now' is now."""
    if text == "now":
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time such as 2026-03-01T09:00") from None
    if len(text) == 10:  # a plain date means its start
        parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone or time_zone_from_environment())


def report_zone(name: str | None) -> tzinfo:
    """`--tz NAME` (an IANA name: Asia/Shanghai, UTC), else the installation's zone (CRM_TIME_ZONE)."""
    if name is None:
        try:
            return time_zone_from_environment()
        except SettingsError as error:
            raise fail(str(error)) from None
    try:
        return zone_named(name)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--tz") from None
