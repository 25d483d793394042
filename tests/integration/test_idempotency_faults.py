"""Idempotency-Key under real faults on PostgreSQL: a worker killed between saving and answering, and a
database restart. Each retry with the same key must run the command exactly once and return its answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from domain.customer import Customer
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from tests.support.api_server import bearer, free_port, running_api, write_tokens_file
from tests.conftest import at

from tests.support import running_services as services

TOKEN = "faults-sales-token"
SALES = bearer(TOKEN)
REPO_ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = {"name": "王芳", "company": "杭州某某", "region": "华东", "industry": "零售", "channel": "web"}


@contextmanager
def _crashing_server(database_url: str, folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    tokens = write_tokens_file(folder, {TOKEN: ("李娜", "sales")})
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.support.crash_after_commit", database_url, str(port), str(tokens)],
                              cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.kill()
        server.wait(10)


def _customers(crm: CrmApplication) -> list[UUID]:
    return [e.originator_id for _, e in crm.read_log() if isinstance(e, Customer.Registered)]


def _send_to_dying_worker(crm: CrmApplication, folder: Path, method: str, path: str, headers: dict[str, str],
                          body: dict[str, object]) -> None:
    """The request reaches a worker that commits it and is killed before answering."""
    with _crashing_server(crm.database.url, folder) as (base, server):
        with pytest.raises(httpx.TransportError):  # the connection drops: no answer at all
            httpx.request(method, f"{base}{path}", json=body, headers=headers, timeout=15)
        assert server.wait(10) == -9


def test_a_creation_committed_by_a_killed_worker_is_answered_on_retry_and_not_repeated(
        crm_pg: CrmApplication, tmp_path: Path) -> None:
    headers = {**SALES, "Idempotency-Key": "register-wangfang-1"}
    _send_to_dying_worker(crm_pg, tmp_path, "POST", "/customers", headers, CUSTOMER)
    saved = _customers(crm_pg)
    assert len(saved) == 1  # the worker did commit before it died

    with running_api(crm_pg.database, {TOKEN: ("李娜", "sales")}) as base:
        retry = httpx.post(f"{base}/customers", json=CUSTOMER, headers=headers, timeout=15)
        again = httpx.post(f"{base}/customers", json=CUSTOMER, headers=headers, timeout=15)

    assert retry.status_code == again.status_code == 201
    assert retry.json() == {"id": str(saved[0]), "version": 1}  # the original answer, for the saved customer
    assert retry.headers["idempotent-replayed"] == "true" and retry.headers["location"] == f"/customers/{saved[0]}"
    assert _customers(crm_pg) == saved  # written once


def test_a_change_committed_by_a_killed_worker_is_answered_on_retry_and_not_repeated(
        crm_pg: CrmApplication, tmp_path: Path) -> None:
    customer = crm_pg.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某"), at(0))
    deal = crm_pg.open_deal(OpenDeal(customer, "ERP", "1000", owner="李娜"), at(1))
    headers = {**SALES, "Idempotency-Key": "move-1", "If-Match": '"1"'}
    body = {"stage": "needs_analysis", "reason": "客户确认需求"}
    _send_to_dying_worker(crm_pg, tmp_path, "PUT", f"/deals/{deal}/stage", headers, body)

    with running_api(crm_pg.database, {TOKEN: ("李娜", "sales")}) as base:
        retry = httpx.put(f"{base}/deals/{deal}/stage", json=body, headers=headers, timeout=15)

    assert (retry.status_code, retry.json(), retry.headers["etag"]) == (200, {"id": str(deal), "version": 2}, '"2"')
    assert [type(e).__name__ for e in crm_pg.history(deal)] == ["Opened", "StageChanged"]


@pytest.fixture
def restartable(crm_pg: CrmApplication) -> CrmApplication:
    """crm_pg, on a server this test may stop and start (the suite's own; never a shared production one)."""
    return crm_pg


def _restart_postgres() -> None:
    services.run_deploy("postgres.sh", "stop")
    services.run_deploy("postgres.sh", "start")


def test_the_first_command_after_a_postgresql_restart_succeeds_and_its_retry_is_replayed(
        restartable: CrmApplication) -> None:
    headers = {**SALES, "Idempotency-Key": "after-restart-1"}
    with running_api(restartable.database, {TOKEN: ("李娜", "sales")}) as base, httpx.Client(timeout=30) as client:
        assert client.post(f"{base}/customers", json={**CUSTOMER, "name": "预热"}, headers=SALES).status_code == 201
        _restart_postgres()  # every pooled connection of the API is now stale
        first = client.post(f"{base}/customers", json=CUSTOMER, headers=headers)
        retry = client.post(f"{base}/customers", json=CUSTOMER, headers=headers)

    assert first.status_code == 201, first.text  # a stale connection is noticed, not answered with 503
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(_customers(restartable)) == 2


def _until_not_503(client: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
    """Retry as a client told Retry-After would (the API keeps saying 503 until its probe sees the database)."""
    deadline = time.monotonic() + 30
    while (response := client.post(url, json=CUSTOMER, headers=headers)).status_code == 503:
        assert time.monotonic() < deadline, "the API did not recover within 30 s"
        time.sleep(0.2)
    return response


def test_a_command_refused_while_postgresql_is_down_runs_once_when_retried_after(
        restartable: CrmApplication) -> None:
    headers = {**SALES, "Idempotency-Key": "while-down-1"}
    with running_api(restartable.database, {TOKEN: ("李娜", "sales")}) as base, httpx.Client(timeout=60) as client:
        services.run_deploy("postgres.sh", "stop")
        try:
            down = client.post(f"{base}/customers", json=CUSTOMER, headers=headers)
        finally:
            services.run_deploy("postgres.sh", "start")
        answers = [_until_not_503(client, f"{base}/customers", headers)]
        answers += [client.post(f"{base}/customers", json=CUSTOMER, headers=headers) for _ in range(2)]

    assert down.status_code == 503  # transient: not the key's answer
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    assert "idempotent-replayed" not in answers[0].headers and answers[1].headers["idempotent-replayed"] == "true"
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(_customers(restartable)) == 1
