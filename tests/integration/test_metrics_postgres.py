"""`GET /metrics` and readiness of a real `crm serve --workers 2` on PostgreSQL.

A scrape reaches one worker, whichever the kernel picks; the commands were sent over CONNECTIONS keep-alive
connections that the kernel spread over both workers (odds that all landed on one: 2 ** -(CONNECTIONS - 1)),
so a scrape that counts every command, whichever worker answers it, sums both workers' counts. The server runs
with --no-projector: the test moves the read models itself, to see the lag appear, readiness flip to 503, and
both come back once they have caught up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from tests.support.api_server import free_port, write_tokens_file
from tests.unit.services.projection_runtime.test_projection_failures import write_unappliable_event

SALES, MONITOR = "metrics-sales-token", "metrics-monitor-token"
CONNECTIONS = 16
COMMANDS_PER_CONNECTION = 2
MAX_LAG = 5
REPO_ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@contextmanager
def crm_serve(database_url: str, folder: Path, workers: int = 2) -> Iterator[str]:
    """`crm serve --workers N --no-projector` in a process of its own (output in folder/serve.log)."""
    tokens_file = write_tokens_file(folder, {SALES: ("李娜", "sales"), MONITOR: ("prometheus", "monitor")})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gateways.cli.main", "serve", "--port", str(port), "--tokens-file", str(tokens_file),
         "--workers", str(workers), "--no-projector"], cwd=REPO_ROOT,
        env={**os.environ, "CRM_DATABASE_URL": database_url, "CRM_READY_MAX_LAG": str(MAX_LAG)},
        stdout=(folder / "serve.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (folder / "serve.log").read_text().count("Application startup complete.") < workers:
            assert server.poll() is None, f"crm serve exited: {(folder / 'serve.log').read_text()}"
            assert time.monotonic() < deadline, f"crm serve did not start: {(folder / 'serve.log').read_text()}"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {MONITOR}"})
    assert response.status_code == 200, response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def register_customers(client: httpx.Client) -> list[int]:
    body = {"name": "张三", "region": "华东", "industry": "制造业", "channel": "web"}
    return [client.post("/customers", json=body).status_code for _ in range(COMMANDS_PER_CONNECTION)]


def lag(found: Samples, read_model: str) -> float:
    return found[("crm_projection_lag_events", (("partition", "all"), ("read_model", read_model)))]


def test_every_scrape_counts_the_commands_of_both_workers_and_shows_the_lag(crm_pg: CrmApplication,
                                                                            tmp_path: Path) -> None:
    expected = CONNECTIONS * COMMANDS_PER_CONNECTION
    with crm_serve(crm_pg.database.url, tmp_path) as base, ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SALES}"},
                                                    timeout=30)) for _ in range(CONNECTIONS)]
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            statuses = [status for answers in pool.map(register_customers, clients) for status in answers]
        scrapes = [scrape(client) for client in clients]  # each connection's worker answers its scrape

    assert statuses == [201] * expected
    ok = ("crm_command_duration_seconds_count", (("command", "RegisterCustomer"), ("outcome", "ok")))
    created = ("crm_http_requests_total", (("method", "POST"), ("route", "/customers"), ("status", "201")))
    assert [found[ok] for found in scrapes] == [expected] * CONNECTIONS
    assert [found[created] for found in scrapes] == [expected] * CONNECTIONS
    assert all(lag(found, "funnel") >= expected for found in scrapes)  # no projector ran
    assert scrapes[-1][("crm_log_head_position", ())] == crm_pg.event_count()


def test_readiness_flips_to_503_while_a_read_model_lags_or_is_stopped_and_back_once_caught_up(
        crm_pg: CrmApplication, tmp_path: Path) -> None:
    store = ReadModelStore(crm_pg.database)
    with crm_serve(crm_pg.database.url, tmp_path) as base, httpx.Client(base_url=base, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {SALES}"
        register_customers(client)
        register_customers(client)  # 6 events > MAX_LAG
        lagging, lagging_metrics = client.get("/health"), scrape(client)
        projector_for(crm_pg, store).catch_up()
        caught_up, caught_up_metrics = client.get("/health"), scrape(client)
        write_unappliable_event(crm_pg)
        projector_for(crm_pg, store).catch_up(strict=False)
        stopped, stopped_metrics = client.get("/health"), scrape(client)
        for name in stopped.json()["not_ready"]:
            projector_for(crm_pg, store).resume(name, skip=True)
        projector_for(crm_pg, store).catch_up()
        resumed = client.get("/health")
        with store.transaction() as cursor:  # a relay that published all but the last 2 events
            cursor.execute("INSERT INTO projection_positions (name, position) VALUES ('kafka-relay', ?)",
                           (crm_pg.event_count() - 2,))
        relay_metrics = scrape(client)
        live = client.get("/health/live")
    store.close()

    assert lagging.status_code == 503 and "events behind the log, more than CRM_READY_MAX_LAG=5" in \
        lagging.json()["not_ready"]["funnel"]
    assert lag(lagging_metrics, "funnel") > MAX_LAG and lag(caught_up_metrics, "funnel") == 0
    assert caught_up.status_code == 200 and caught_up.json()["status"] == "ok"
    assert stopped.status_code == 503 and stopped.json()["not_ready"]["funnel"].startswith("stopped: ")
    assert stopped_metrics[("crm_read_model_stopped", (("read_model", "funnel"),))] == 1
    assert resumed.status_code == 200, resumed.json()
    assert relay_metrics[("crm_relay_lag_events", (("relay", "kafka-relay"), ("shard", "0")))] == 2
    assert live.json() == {"status": "alive"}
