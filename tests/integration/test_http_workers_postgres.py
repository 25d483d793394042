"""`crm serve --workers 2` for real on PostgreSQL: every guarantee holds whichever worker process answers.

Each test opens CONNECTIONS keep-alive connections; the kernel spreads them over the workers' sockets
(SO_REUSEPORT), so the odds that all land on one of the two workers are 2 ** -(CONNECTIONS - 1).
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from uuid import UUID

import httpx

from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from tests.support.api_server import free_port, write_tokens_file
from tests.conftest import at

TOKEN = "workers-sales-token"
SALES = {"Authorization": f"Bearer {TOKEN}"}
CONNECTIONS = 16
REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def crm_serve(database_url: str, folder: Path, workers: int = 2) -> Iterator[str]:
    """`crm serve --workers N` in a process of its own (output in folder/serve.log); yields the base URL;
    it must stop cleanly on SIGTERM."""
    tokens_file = write_tokens_file(folder, {TOKEN: ("李娜", "sales")})
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gateways.cli.main", "serve", "--port", str(port), "--tokens-file", str(tokens_file),
         "--workers", str(workers)], cwd=REPO_ROOT, env={**os.environ, "CRM_DATABASE_URL": database_url},
        stdout=(folder / "serve.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_until_every_worker_started(folder / "serve.log", server, workers)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0


def _wait_until_every_worker_started(log: Path, server: subprocess.Popen[bytes], workers: int) -> None:
    """Each worker listens only once its app is built, then uvicorn logs that it started."""
    deadline = time.monotonic() + 60
    while log.read_text().count("Application startup complete.") < workers:
        assert server.poll() is None, f"crm serve exited: {log.read_text()}"
        assert time.monotonic() < deadline, f"crm serve did not start {workers} workers: {log.read_text()}"
        time.sleep(0.1)


def _deal(crm: CrmApplication) -> str:
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某"), at(0))
    return str(crm.open_deal(OpenDeal(customer, "ERP", "1000", owner="李娜"), at(1)))


def _at_once(clients: list[httpx.Client], request: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """`request` on every client (connection) at the same moment."""
    start = threading.Barrier(len(clients))

    def send(client: httpx.Client) -> httpx.Response:
        start.wait()
        return request(client)

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(send, clients))


@contextmanager
def _connections(base: str) -> Iterator[list[httpx.Client]]:
    with ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=base, headers=SALES, timeout=30))
                   for _ in range(CONNECTIONS)]
        for client in clients:
            assert client.get("/health").status_code == 200  # connect now, before the concurrent part
        yield clients


def test_an_idempotency_key_runs_its_command_once_whichever_worker_gets_the_retries(
        crm_pg: CrmApplication, tmp_path: Path) -> None:
    deal = _deal(crm_pg)
    headers = {"Idempotency-Key": "move-once-7f3a"}
    body = {"stage": "needs_analysis", "reason": "客户确认需求"}

    with crm_serve(crm_pg.database.url, tmp_path) as base, _connections(base) as clients:
        concurrent = _at_once(clients, lambda c: c.put(f"/deals/{deal}/stage", json=body, headers=headers))
        retries = [client.put(f"/deals/{deal}/stage", json=body, headers=headers) for client in clients]

    statuses = Counter(response.status_code for response in concurrent)
    assert set(statuses) == {200}  # copies running at once: the second to commit replays the first's answer
    assert all(r.status_code == 200 and r.json() == {"id": deal, "version": 2} for r in retries)
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in [*concurrent, *retries]) == \
        statuses[200] + len(retries) - 1  # every answer but the first is the stored one
    assert _event_names(crm_pg, deal) == ["Opened", "StageChanged"]
    access_log = (tmp_path / "serve.log").read_text()
    assert access_log.count(f'"PUT /deals/{deal}/stage HTTP/1.1" 200') == statuses[200] + len(retries)
    assert TOKEN not in access_log


def test_a_stale_if_match_is_refused_by_every_worker(crm_pg: CrmApplication, tmp_path: Path) -> None:
    deal = _deal(crm_pg)
    stale = {"If-Match": '"1"'}

    with crm_serve(crm_pg.database.url, tmp_path) as base, _connections(base) as clients:
        first = clients[0].put(f"/deals/{deal}/stage", json={"stage": "needs_analysis"}, headers=stale)
        others = [client.put(f"/deals/{deal}/amount", json={"amount": "2000"}, headers=stale)
                  for client in clients[1:]]

    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    assert [response.status_code for response in others] == [409] * (CONNECTIONS - 1)
    assert _event_names(crm_pg, deal) == ["Opened", "StageChanged"]


def test_concurrent_changes_of_one_version_from_every_worker_commit_once(crm_pg: CrmApplication,
                                                                         tmp_path: Path) -> None:
    deal = _deal(crm_pg)

    with crm_serve(crm_pg.database.url, tmp_path) as base, _connections(base) as clients:
        answers = _at_once(clients, lambda c: c.put(f"/deals/{deal}/amount", json={"amount": str(2000 + id(c) % 997)},
                                                    headers={"If-Match": '"1"'}))

    assert Counter(response.status_code for response in answers) == {200: 1, 409: CONNECTIONS - 1}
    assert _event_names(crm_pg, deal) == ["Opened", "AmountChanged"]


def _event_names(crm: CrmApplication, deal: str) -> list[str]:
    return [type(event).__name__ for event in crm.history(UUID(deal))]
