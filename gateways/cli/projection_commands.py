"""`crm projections rebuild | catch-up | follow | status | resume | reset | consume`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from domain.partitions import PARTITIONS
from gateways.cli.common import console, crm_application, fail, read_store, start_logging
from gateways.cli.partition_status import resume_partition, show_partitions
from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped, start_when_ready
from services.projection_runtime.parallel_rebuild import default_jobs, rebuild_in_parallel
from services.projection_runtime.projector import DEFAULT_BATCH, ProjectionRace, Projector
from services.projection_runtime.rebuild_record import recorded_rebuild
from services.projection_runtime.registry import READ_MODELS, projector_for
from services.storage.schema_lock import advisory_lock

if TYPE_CHECKING:  # imported when `consume` runs: the other commands need no Kafka client
    from gateways.kafka.projection_consumer import ProjectionConsumer
    from services.application import CrmApplication
    from services.storage.read_model_store import ReadModelStore

projections_app = typer.Typer(help="Read models built from the event log.", no_args_is_help=True)
Names = Annotated[list[str] | None, typer.Argument(help=f"Read models (default: all): {', '.join(READ_MODELS)}")]


@contextmanager
def progress_bar(label: str, total: int, completed: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the log; yields the `on_progress(done, head)` callback that moves it."""
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(label, total=total, completed=completed)
        yield lambda done, head: progress.update(task, completed=done, total=head)


def run_with_progress(label: str, projector: Projector, rebuild: bool, limit: int = DEFAULT_BATCH) -> int:
    completed = 0 if rebuild else min(projector.positions().values())
    with progress_bar(label, projector.app.event_count(), completed) as update:
        # a stopped read model does not stop the others: `status` tells
        return projector.rebuild(update, limit) if rebuild else projector.catch_up(update, limit, strict=False)


@projections_app.command()
def rebuild(
    names: Names = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes on PostgreSQL, each rebuilding a share "
                                                  "of the read models (default: one per core).")] = default_jobs(),
    online: Annotated[bool, typer.Option("--online", help="Build the new version beside the current one, which "
                                         "keeps answering and being fed, then swap them in one transaction.")] = False,
    bulk: Annotated[bool, typer.Option("--bulk", help="Read the log once and fold it set-based in DuckDB where a "
                                                      "read model has such a fold (funnel, timeline), writing each "
                                                      "table once; the others by their handlers.")] = False,
) -> None:
    """Empty the read models and build them again from the whole log (its progress also on `crm serve`'s
    /metrics: crm_rebuild_progress). With --online they keep answering meanwhile."""
    with crm_application() as crm, read_store(crm) as store:
        bulk_build = _bulk_builder(crm) if bulk else None  # refuses a log it cannot read before anything is written
        total = crm.event_count()
        if online:
            _rebuild_online(crm, store, names or [], total, bulk_build)
            return
        with no_online_rebuild(crm), recorded_rebuild(store, names or list(READ_MODELS), total), \
                progress_bar("Rebuilding", total, 0) as update:
            if bulk_build is not None:
                bulk_build(crm, store, names or [], update)
            else:
                rebuild_in_parallel(crm, store, names or [], jobs, update)
        console.print(f"Rebuilt {', '.join(names or READ_MODELS)} over {crm.event_count():,} events.")
        projector_for(crm, store, names or []).require_running()


def _rebuild_online(crm: CrmApplication, store: ReadModelStore, names: list[str], total: int,
                    bulk_build: Callable[..., object] | None) -> None:
    """`rebuild --online` (services.projection_runtime.online_rebuild); a refusal exits 1 with its reason."""
    from services.projection_runtime.online_rebuild import OnlineRebuildRefused, handler_build, rebuild_online

    try:
        with progress_bar("Building the new version", total, 0) as update:  # it records itself (/metrics)
            position = rebuild_online(crm, store, names, bulk_build or handler_build, update)
    except OnlineRebuildRefused as refused:
        raise fail(str(refused)) from None
    console.print(f"Swapped in the new {', '.join(names or READ_MODELS)} at log position {position:,}; the old "
                  "version is dropped.")


def _bulk_builder(crm: CrmApplication) -> Callable[..., object]:
    """`services.bulk`'s builder, once the log is known to be one it reads (else exit 1, nothing written)."""
    from services.bulk.duckdb_rebuild import bulk_build, require_bulk_readable  # DuckDB, pyarrow: --bulk only
    from services.bulk.log_reader import UnsupportedLog

    try:
        require_bulk_readable(crm)
    except UnsupportedLog as error:
        raise fail(str(error)) from None
    return bulk_build


@contextmanager
def no_online_rebuild(crm: CrmApplication) -> Iterator[None]:
    """Hold the online-rebuild lock while an offline `rebuild`/`reset` runs (so that neither empties tables the
    other builds from or swaps); exit 1, nothing changed, if an online rebuild holds it."""
    from services.projection_runtime.online_rebuild import OnlineRebuildBusy, exclusive

    try:
        with exclusive(crm):
            yield
    except OnlineRebuildBusy as busy:
        raise fail(str(busy)) from None


@projections_app.command("catch-up")
def catch_up(names: Names = None) -> None:
    """Bring the read models up to the head of the log once, then exit (reports only read what a projector
    applied: this, `follow`, or `crm serve`'s projector); exits 1 if one is stopped."""
    with crm_application() as crm, read_store(crm) as store:
        with advisory_lock(crm.database):  # a follower starting now creates tables in turn
            projector = projector_for(crm, store, names or [])
        run_with_progress("Catching up", projector, rebuild=False)
        projector.require_running()
        console.print(f"{', '.join(names or READ_MODELS)} caught up to log position {crm.event_count():,}.")


@projections_app.command()
def follow(
    poll: Annotated[float, typer.Option(help="Seconds between polls once caught up.")] = 0.2,
    batch: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = DEFAULT_BATCH,
) -> None:
    """Catch up, then keep the read models current as events are recorded (Ctrl-C stops). Database restarts
    are retried with growing pauses (logged on stderr)."""
    start_logging()
    stop, caught_up = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), caught_up.set()))
    with ExitStack() as stack:
        try:
            projector = start_when_ready("projections follow", _open_projector, stack, stop, TRANSIENT_DATABASE_ERRORS)
            if projector is None:
                return
            _catch_up(projector, batch, caught_up)
            console.print("Following the log; Ctrl-C to stop.")
            projector.follow(stop, poll, batch)
        except KeyboardInterrupt:
            stop.set()


def _open_projector(opened: ExitStack) -> Projector:
    crm = opened.enter_context(crm_application())
    store = opened.enter_context(read_store(crm))
    with advisory_lock(crm.database):  # processes starting together (after an outage) create tables in turn:
        return projector_for(crm, store)  # CREATE TABLE IF NOT EXISTS at once fails in PostgreSQL


def _catch_up(projector: Projector, batch: int, caught_up: threading.Event) -> None:
    """Batches with a progress bar until the read models reach the head (database faults retried)."""
    with progress_bar("Catching up", 0, 0) as update:  # the first batch sets both (after any retries)
        def step() -> int:
            moved = projector.run_batch(batch)
            update(min(projector.positions().values()), projector.app.event_count())
            if not moved:
                caught_up.set()
            return moved

        follow_until_stopped("projections catch-up", step, caught_up, 0, (*TRANSIENT_DATABASE_ERRORS, ProjectionRace))


@projections_app.command()
def status() -> None:
    """Position, lag and failure of each read model, by what feeds it (the consumers first, if they feed
    some: over shards they feed all); exits 1 if one is stopped."""
    with crm_application() as crm, read_store(crm) as store:
        projector = projector_for(crm, store)
        states = projector.status()
        consumed = show_partitions(store, [state.name for state in states])  # the read models `consume` feeds
        table = Table("Read model", "Position", "Log head", "Lag", "State",
                      title="Fed by the log follower" if consumed else None, title_justify="left")
        for state in (state for state in states if state.name not in consumed):
            table.add_row(state.name, f"{state.position:,}", f"{state.head:,}", f"{state.lag:,}",
                          Text.assemble(("stopped", "red"), f": {state.failure.message()}") if state.failure else "running")
        if table.rows:
            console.print(table)
        for skipped in projector.skips():
            console.print(f"{skipped.name} passed by {skipped.event_type} of {skipped.aggregate_id} at log position "
                          f"{skipped.position:,} ({skipped.reason}) on {skipped.at}")
        stopped = [state.name for state in states if state.stopped]
        if stopped:
            raise fail(f"stopped: {', '.join(stopped)}. Record compensating events with the commands, then "
                       "`crm projections resume NAME` (retries the event, after a fix) or "
                       "`crm projections resume NAME --skip` (passes it by, for good)")


@projections_app.command()
def resume(
    names: Annotated[list[str], typer.Argument(help="Stopped read models to let go on.")],
    skip: Annotated[bool, typer.Option("--skip", help="Pass by the event each stopped at, for good (rebuilds "
                                                      "pass it by too); without it the event is retried.")] = False,
    partition: Annotated[int | None, typer.Option(min=0, max=PARTITIONS - 1, help="For read models fed by "
                                                  "partitions (`consume`): the partition to go on in.")] = None,
) -> None:
    """Let stopped read models go on after a repair, and catch them up (with --partition: the consumers do)."""
    with crm_application() as crm, read_store(crm) as store:
        projector = projector_for(crm, store, names)
        if partition is not None:
            resume_partition(store, projector.models, partition, skip)
            return
        for name in names:
            failure = projector.resume(name, skip)
            if failure is None:
                console.print(f"{name} was not stopped.")
            else:
                console.print(f"{name}: {'passed by' if skip else 'retrying'} {failure.event_type} of "
                              f"{failure.aggregate_id} at log position {failure.position:,}.")
        run_with_progress("Catching up", projector, rebuild=False)
        projector.require_running()
        console.print(f"{', '.join(names)} caught up to log position {crm.event_count():,}.")


@projections_app.command()
def reset(names: Names = None) -> None:
    """Empty the read models and forget every feeder's progress (the follower's position, the consumers'
    offsets), so that whichever feeds them next builds them from the start: to move them from the log
    follower to `crm projections consume` (stop the follower first). `rebuild` moves them back."""
    with crm_application() as crm, read_store(crm) as store, no_online_rebuild(crm):
        projector_for(crm, store, names or []).reset()
        console.print(f"Reset {', '.join(names or READ_MODELS)}: empty, fed by neither the follower nor consumers.")


@projections_app.command()
def consume(
    names: Names = None,
    bootstrap: Annotated[str, typer.Option(envvar="CRM_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers.")]
    = "127.0.0.1:59092",
    topic: Annotated[str, typer.Option(help="Topic `crm relay` publishes to.")] = "crm.events",
    group: Annotated[str, typer.Option(help="Kafka consumer group: the members share the partitions.")]
    = "crm-projectors",
    batch: Annotated[int, typer.Option(min=1, help="Records per poll, applied in one transaction.")] = 2000,
    session_timeout: Annotated[float, typer.Option(min=6, help="Seconds after which a silent member's "
                                                              "partitions go to the others.")] = 10.0,
    once: Annotated[bool, typer.Option("--once", help="Handle what the topic holds now in this member's "
                                                      "partitions, then exit (for scripts).")] = False,
) -> None:
    """Keep the read models current from Kafka as a member of a consumer group: start as many as you like, on
    any machine; the topic's partitions are shared among them, and a member's death hands its partitions to
    the others. Database restarts and broker outages are waited out with growing pauses (logged on stderr)."""
    from kafka.errors import KafkaError

    from gateways.kafka.relay import TopicMismatch

    start_logging()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with ExitStack() as stack:
        try:
            member = start_when_ready("projections consume", lambda opened: _open_member(
                opened, names or [], bootstrap, topic, group, batch, int(session_timeout * 1000)), stack, stop,
                (KafkaError, *TRANSIENT_DATABASE_ERRORS))
        except TopicMismatch as error:
            raise fail(str(error)) from None
        if member is None:
            return
        console.print(f"Consuming {topic} in group {group}; Ctrl-C to stop.")
        member.drain(stop) if once else member.run(stop)  # FeederConflict: exit 1 (crm_application)
        console.print(f"Applied {member.applied:,} events of {member.delivered:,} records.")


def _open_member(opened: ExitStack, names: list[str], bootstrap: str, topic: str, group: str, batch: int,
                 session_timeout_ms: int) -> ProjectionConsumer:
    from gateways.kafka.projection_consumer import ProjectionConsumer, consumer_for
    from gateways.kafka.relay import ensure_events_topic
    from services.sharding.router import ShardedApplication
    from services.projection_runtime.partitioned import PartitionedProjector

    ensure_events_topic(bootstrap, topic)
    crm = opened.enter_context(crm_application())
    store = opened.enter_context(read_store(crm))
    with advisory_lock(crm.database):  # members starting together create tables in turn
        models = projector_for(crm, store, names).models  # names checked
    projector = PartitionedProjector(store, models)  # takes the same lock itself
    consumer = consumer_for(bootstrap, group, batch, session_timeout_ms)
    opened.callback(consumer.close)  # leaves the group: the others take its partitions at once
    mapper = crm.apps[0].mapper if isinstance(crm, ShardedApplication) else crm.mapper  # the shards' are alike
    return ProjectionConsumer(mapper, projector, consumer, topic)


@projections_app.command()
def verify(names: Annotated[list[str] | None, typer.Argument(help="Read models (default: those the bulk path folds "
                                                                  "set-based: funnel, timeline)")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False) -> None:
    """Rebuild the read models by the bulk path in a private place, at the live ones' position, and diff every
    table row for row against them; exits 0 when equal, 1 with the differences. The live ones keep running."""
    from gateways.cli.projection_verify import run_verify  # DuckDB and pyarrow: loaded by this command only

    run_verify(names or [], as_json)
