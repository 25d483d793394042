"""The flat log of a large PostgreSQL log read by several processes at once, each decoding its share of the
positions, the parent handing on their record batches in log order: one `read_log` as before, faster.

Why: decoding stored states (orjson, the transcoder's typed values made plain, upcasting) is Python, ≈ 10 µs
an event of one core, while PostgreSQL's binary COPY costs ≈ 1 µs of its own (measured on 200,903 events,
`python -m tests.benchmarks --only bulk`); one process left the second core idle for the longest phase of a
bulk rebuild. Each worker (`python -m services.bulk.log_shares`) reads ranges of `batch_rows` positions,
worker w the ranges w, w + n, w + 2n, …, decodes them with `log_reader`'s own code and writes them as an Arrow
IPC stream to its stdout, an empty batch closing each range; the parent reads range k from worker k mod n, so
the workers decode ahead of it in turn. They read the parent's snapshot (`pg_export_snapshot`, `SET
TRANSACTION SNAPSHOT`): the rows and the head are those of one transaction, as a single reader's.

A worker costs ≈ 0.3 s of CPU to start (Python, pyarrow, psycopg), so logs of fewer than `SHARED_FROM`
positions are read by the process itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

SHARED_FROM = 100_000  # positions to read: below, the worker processes' start (≈ 0.3 s of CPU each) costs more
MAX_WORKERS = 4  # past the cores, or past PostgreSQL's one COPY backend per worker, more only compete
IDLE_FROM = 0.75  # idle share of the machine's CPU from which the workers pay (2 cores: 1.5 of them idle)
_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding `services`: the workers import from it


def worker_count(positions: int, cores: int | None = None, idle: float | None = None) -> int:
    """How many processes read `positions` log positions: none (the caller reads) below `SHARED_FROM`, on one
    core, or on a busy machine (less than `IDLE_FROM` of its CPU idle: the workers would only compete for it,
    and cost ≈ 15 % more CPU than one process — their start, the IPC), else one per core up to `MAX_WORKERS`."""
    cores = cores or os.cpu_count() or 1
    if positions < SHARED_FROM or cores < 2:
        return 0
    return min(cores, MAX_WORKERS) if (idle_share() if idle is None else idle) >= IDLE_FROM else 0


def idle_share(seconds: float = 0.1) -> float:
    """The machine's idle share of CPU time over the next `seconds` (/proc/stat), not the load average: that
    trails the last minute, and a rebuild often follows other work right away. 1.0 where /proc is missing."""
    def idle_and_total() -> tuple[int, int]:
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all
    try:
        idle, total = idle_and_total()
        time.sleep(seconds)
        idle_after, total_after = idle_and_total()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (idle_after - idle) / max(total_after - total, 1)


def share_ranges(start: int, head: int, batch_rows: int) -> list[tuple[int, int]]:
    """The ranges `(after, upto]` of positions, `batch_rows` wide, that cover `(start, head]`."""
    return [(low, min(low + batch_rows, head)) for low in range(start, head, batch_rows)]


def shared_batches(url: str, snapshot: str, ranges: Sequence[tuple[int, int]], where: str, table: str,
                   batch_rows: int, workers: int) -> Iterator[pa.RecordBatch]:
    """The record batches of `ranges`, in order, decoded by `workers` processes reading `snapshot`."""
    with ExitStack() as stack:
        started = [_start(stack, {"url": url, "snapshot": snapshot, "ranges": list(ranges[w::workers]),
                                  "where": where, "table": table, "batch_rows": batch_rows})
                   for w in range(workers)]
        readers = [pa.ipc.open_stream(process.stdout) for process, _ in started]
        for k in range(len(ranges)):
            process, errors = started[k % workers]
            while (batch := _next(readers[k % workers], process, errors)).num_rows:
                yield batch
        for process, errors in started:
            if process.wait() != 0:
                raise RuntimeError(_failure(process, errors))


def _start(stack: ExitStack, task: dict[str, Any]) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    errors = stack.enter_context(tempfile.TemporaryFile())
    path = os.pathsep.join(filter(None, (_ROOT, os.environ.get("PYTHONPATH"))))
    process = subprocess.Popen([sys.executable, "-m", "services.bulk.log_shares"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=errors, env={**os.environ, "PYTHONPATH": path})
    stack.callback(_stop, process)
    assert process.stdin is not None
    process.stdin.write(orjson.dumps(task))  # on stdin, not in argv: the URL may hold a password
    process.stdin.close()
    return process, errors


def _stop(process: subprocess.Popen[bytes]) -> None:
    """A worker still running when the read ends (the reader stopped early, or failed) is ended."""
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdout:
        process.stdout.close()


def _next(reader: pa.ipc.RecordBatchStreamReader, process: subprocess.Popen[bytes], errors: IO[bytes]) -> pa.RecordBatch:
    try:
        return reader.read_next_batch()
    except (StopIteration, pa.ArrowInvalid, OSError) as ended:
        process.wait()
        raise RuntimeError(_failure(process, errors)) from ended


def _failure(process: subprocess.Popen[bytes], errors: IO[bytes]) -> str:
    errors.seek(0)
    tail = errors.read()[-2000:].decode(errors="replace").strip()
    return f"a log reader process ended (exit status {process.returncode}) before its share was read: {tail}"


def _read_share(task: dict[str, Any], out: IO[bytes]) -> None:
    """A worker: its ranges of the log in the parent's snapshot, decoded, as an Arrow IPC stream on `out`."""
    import psycopg

    from services.bulk.log_reader import LOG_SCHEMA, _batches, copy_rows

    closing = pa.RecordBatch.from_pylist([], LOG_SCHEMA)
    with pa.ipc.new_stream(out, LOG_SCHEMA) as stream, psycopg.connect(task["url"], connect_timeout=10) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{task['snapshot']}'")  # first statement: the parent's rows
            for after, upto in task["ranges"]:
                rows = copy_rows(cursor, task["table"], after, upto, task["where"])
                for batch in _batches(rows, task["batch_rows"]):
                    stream.write_batch(batch)
                stream.write_batch(closing)


if __name__ == "__main__":
    _read_share(orjson.loads(sys.stdin.buffer.read()), sys.stdout.buffer)
