"""HTTP command throughput: concurrent clients moving deals between stages through `crm serve` (its workers),
against the same clients on the same server stack doing one INSERT + COMMIT per request (the same-run
baseline, tests/benchmarks/http_baseline.py): the ratio says whether the code or the machine changed."""

from __future__ import annotations

import http.client
import importlib.util
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import orjson

from projections.funnel import percentile
from tests.benchmarks.delivery import STAGES, open_deals
from tests.benchmarks.harness import REPO_ROOT, Bench, Metric, log, ratio
from tests.benchmarks.writers import (SHARDS, baseline_table, cpu_times, deals_on, open_app, shard_databases,
                                     sharding_available)

TARGET_RATE = 1000
NAME, SHARDED_NAME = "http_command_throughput", "http_command_throughput_sharded"
STARTUP_SECONDS = 60
STARTED = "Application startup complete."  # what uvicorn logs once per worker
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)  # seconds, of the accepted commands
    refused: dict[int, int] = field(default_factory=dict)  # status → count


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tokens_file(directory: Path, token: str) -> Path:
    from gateways.http.tokens import hash_token

    path = directory / "tokens.json"
    path.write_bytes(orjson.dumps({"tokens": [{"sha256": hash_token(token), "name": "压测", "role": "sales"}]}))
    return path


def _wait_until_up(port: int, server: subprocess.Popen[bytes], log_file: Path, workers: int) -> None:
    """Until every worker has started (each listens only once its app is built) and /health answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the HTTP server exited: {log_file.read_text()[-2000:]}")
        try:
            if log_file.read_text().count(STARTED) == workers:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"the HTTP server's {workers} workers did not start within {STARTUP_SECONDS} s")


class Connection:
    """A bare HTTP/1.1 keep-alive connection: the load generator must cost the server's cores little."""

    def __init__(self, port: int, token: str) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._headers = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        self._buffer = b""

    def put(self, path: str, body: bytes) -> int:
        """Send one PUT and read its whole answer; returns the status."""
        head = f"PUT {path} HTTP/1.1\r\n{self._headers}Content-Length: {len(body)}\r\n\r\n"
        self._socket.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head_bytes, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head_bytes)
        if length is None:
            raise RuntimeError(f"answer without Content-Length: {head_bytes[:200]!r}")
        self._buffer = rest
        while len(self._buffer) < int(length.group(1)):
            self._receive()
        self._buffer = self._buffer[int(length.group(1)):]
        return int(head_bytes[9:12])

    def _receive(self) -> None:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._socket.close()


def client(port: int, token: str, deals: list[UUID], start: threading.Barrier, deadline: list[float],
           result: ClientResult) -> None:
    """Move this client's deals to the other stage, one request at a time over one keep-alive connection."""
    connection = Connection(port, token)
    start.wait()
    n = 0
    while time.perf_counter() < deadline[0]:
        deal, stage = deals[n % len(deals)], STAGES[(n // len(deals)) % 2]
        body = orjson.dumps({"stage": stage, "reason": "压测"})
        started = time.perf_counter()
        status = connection.put(f"/deals/{deal}/stage", body)
        if status == 200:
            result.latencies.append(time.perf_counter() - started)
        else:
            result.refused[status] = result.refused.get(status, 0) + 1
        n += 1
    connection.close()


def load(port: int, token: str, deals: list[list[UUID]], seconds: float) -> tuple[list[ClientResult], float]:
    """Every client at once for `seconds`; returns their results and the measured wall time."""
    results = [ClientResult() for _ in deals]
    start, deadline = threading.Barrier(len(deals) + 1), [0.0]
    threads = [threading.Thread(target=client, args=(port, token, mine, start, deadline, result))
               for mine, result in zip(deals, results)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def measure(bench: Bench) -> list[Metric]:
    plan = bench.plan
    if importlib.util.find_spec("gateways.cli.serve_commands") is None:
        return [Metric(NAME, None, "commands/s", None, None, None, f"≥ {TARGET_RATE:,}/s", None,
                       "HTTP app not available")]
    from gateways.cli.serve_commands import DEFAULT_WORKERS
    deals = [open_deals(bench.app, plan.http_deals_per_client) for _ in range(plan.http_clients)]
    baseline_table(bench.main_url)
    # The baseline between the two runs of `crm serve`, so that a neighbour's load drifting over the run
    # falls on both sides alike.
    results, seconds, idle = _serve_and_load(bench, deals, _crm_serve())
    plain, plain_seconds, plain_idle = _serve_and_load(bench, deals, _baseline)
    # The same load with the read models left to another process: what the requests cost alone. `crm serve`
    # projects the log in the background (queries never write), which takes CPU from the workers on a small
    # machine; this figure tells that cost from a slower request path.
    alone, alone_seconds, _ = _serve_and_load(bench, deals, _crm_serve("--no-projector"))
    latencies = [latency * 1000 for result in results for latency in result.latencies]
    refused: dict[int, int] = {}
    for result in results:
        for status, count in result.refused.items():
            refused[status] = refused.get(status, 0) + count
    rate = len(latencies) / seconds
    plain_rate = sum(len(r.latencies) for r in plain) / plain_seconds
    plain_latencies = [latency * 1000 for result in plain for latency in result.latencies]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return [Metric(
        NAME, round(rate), "commands/s",
        f"the same clients and {DEFAULT_WORKERS} workers on crm serve's stack (tests/benchmarks/http_baseline.py) "
        "against a minimal endpoint doing one INSERT + COMMIT per request", round(plain_rate),
        ratio(rate, plain_rate), f"≥ {TARGET_RATE:,}/s with no refusals", rate >= TARGET_RATE and not refused,
        {"clients": plan.http_clients, "seconds": round(seconds, 2), "accepted": len(latencies),
         "refused_by_status": refused, "p50_ms": round(p50 or 0, 1), "p99_ms": round(p99 or 0, 1),
         "request": "PUT /deals/{id}/stage (bearer token, role sales), one keep-alive connection per client "
                    "(a bare socket client, so that the load generator takes little CPU from the server)",
         "server": f"crm serve --workers {DEFAULT_WORKERS} (its default) on the benchmark's database",
         "without_projector": round(sum(len(r.latencies) for r in alone) / alone_seconds),
         "baseline_p50_ms": round(percentile(plain_latencies, 0.5) or 0, 1),
         "baseline_p99_ms": round(percentile(plain_latencies, 0.99) or 0, 1),
         "baseline_refused": sum(sum(r.refused.values()) for r in plain),
         "machine_idle": idle, "baseline_machine_idle": plain_idle,
         "shards": 1},
    ), *_sharded(bench, alone_rate=sum(len(r.latencies) for r in alone) / alone_seconds, plain_rate=plain_rate)]


def metric_names() -> tuple[str, ...]:
    return (NAME, SHARDED_NAME) if sharding_available() else (NAME,)


def _sharded(bench: Bench, alone_rate: float, plain_rate: float) -> list[Metric]:
    """The same load on `crm serve --no-projector` over 3 shard databases (CRM_SHARD_URLS: a sharded
    installation's read models are fed by consumers of Kafka, not by the server), when services/sharding/ is
    on this branch; compared with the baseline endpoint and with 1 shard --no-projector, same run."""
    if not sharding_available():
        return []
    from domain.base import Meta

    plan, urls = bench.plan, shard_databases(bench, SHARDS)
    app = open_app(urls)
    try:
        app.ensure_default_pipelines(Meta(actor="system"))
        deals = [deals_on(app, plan.http_deals_per_client, n % SHARDS) for n in range(plan.http_clients)]
    finally:
        app.close()
    results, seconds, idle = _serve_and_load(bench, deals, _crm_serve("--no-projector"),
                                             {"CRM_SHARD_URLS": ",".join(urls)})
    rate = sum(len(r.latencies) for r in results) / seconds
    latencies = [latency * 1000 for result in results for latency in result.latencies]
    refused = sum(sum(r.refused.values()) for r in results)
    return [Metric(
        SHARDED_NAME, round(rate), f"commands/s on {SHARDS} shards",
        "the baseline endpoint of http_command_throughput (one INSERT + COMMIT per request), same run",
        round(plain_rate), ratio(rate, plain_rate), "none set (informational)", None,
        {"shards": SHARDS, "vs_one_shard_without_projector": ratio(rate, alone_rate),
         "one_shard_without_projector": round(alone_rate), "refused": refused, "machine_idle": idle,
         "p50_ms": round(percentile(latencies, 0.5) or 0, 1), "p99_ms": round(percentile(latencies, 0.99) or 0, 1),
         "server": "crm serve --no-projector, CRM_SHARD_URLS of 3 fresh databases on the one server; client n's "
                   "deals on shard n mod 3"})]


def _crm_serve(*options: str) -> Callable[[int], list[str]]:
    """`crm serve` with its default workers (and `options`) on a port."""
    from gateways.cli.serve_commands import DEFAULT_WORKERS

    return lambda port: ["gateways.cli.main", "serve", "--port", str(port), "--workers", str(DEFAULT_WORKERS), *options]


def _baseline(port: int) -> list[str]:
    """The baseline server with as many workers as `crm serve`'s default."""
    from gateways.cli.serve_commands import DEFAULT_WORKERS

    return ["tests.benchmarks.http_baseline", str(port), str(DEFAULT_WORKERS)]


def _serve_and_load(bench: Bench, deals: list[list[UUID]], module: Callable[[int], list[str]],
                    env: dict[str, str] | None = None) -> tuple[list[ClientResult], float, float | None]:
    """Start `python -m MODULE…` (`crm serve` or the baseline: both log each worker's start) on the
    benchmark's database and load it with the clients: their results, the seconds and the machine's idle
    share of CPU time meanwhile."""
    from gateways.cli.serve_commands import DEFAULT_WORKERS

    token, port = secrets.token_hex(16), _free_port()
    command, workers = module(port), DEFAULT_WORKERS
    log_file = bench.workdir / "http-server.log"
    with log_file.open("wb") as server_log:
        server = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=REPO_ROOT, stdout=server_log, stderr=server_log,
            env={**os.environ, "CRM_DATABASE_URL": bench.main_url,
                 "CRM_API_TOKENS_FILE": str(_tokens_file(bench.workdir, token)), **(env or {})})
        try:
            _wait_until_up(port, server, log_file, workers)
            log(f"HTTP: {bench.plan.http_clients} clients for {bench.plan.http_seconds} s: {' '.join(command)}")
            before = cpu_times()
            results, seconds = load(port, token, deals, bench.plan.http_seconds)
            idle, total = (now - then for now, then in zip(cpu_times(), before))
            return results, seconds, round(idle / total, 2) if total else None
        finally:
            server.terminate()
            server.wait(timeout=30)
