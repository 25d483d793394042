"""Bearer tokens and roles over every route, token files, and tokens never reaching a log."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from gateways.cli.serve_commands import server_config
from gateways.http.tokens import Principal, TokenConfigError, TokenRegistry
from services.settings import database_from_url
from tests.support.api_server import running_api
from tests.unit.gateways.http.conftest import TOKENS, auth

# Routes outside the OpenAPI schema that may be public: FastAPI's docs, and the dashboard's page and static
# files (gateways/web; they hold no data, the page asks the API with the user's token).
PUBLIC_PAGES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/dashboard", "/dashboard/static/{name}"}
PUBLIC = {("GET", "/health"), ("GET", "/health/live")}
SALES_AREAS = {"customers", "leads", "deals", "campaigns"}
PATH_VALUES = {"customer_id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e01", "lead_id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e02",
               "deal_id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e03", "campaign_id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e04",
               "ticket_id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e05", "key": "sales", "stage": "lead", "tag": "vip",
               "kind": "industry", "value": "零售", "scope": "owner", "name": "李娜", "period": "2026-Q1",
               "owner": "李娜", "variant": "A"}


def expected_roles(method: str, path: str) -> set[str]:
    """The role table of the specification, written out independently of gateways.http.auth."""
    area = path.split("/")[1]
    roles = {"admin"}
    if path == "/personal-data/open":
        return roles | {"subscriber"}
    if path == "/metrics":  # the business's activity by command type: not public (gateways/http/routes/metrics_routes)
        return roles | {"analyst", "monitor"}
    if method == "GET":
        roles |= {"analyst"}
        roles |= {"sales"} if area in SALES_AREAS | {"pipelines", "vocabularies", "funnel", "segments", "reports",
                                                     "exchange-rates", "reminders", "forecast", "targets", "teams",
                                                     "inspection", "winloss"} else set()
        roles |= {"service"} if area in {"tickets", "customers", "reports", "reminders"} else set()
    else:
        roles |= {"sales"} if area in SALES_AREAS else set()
        roles |= {"service"} if area == "tickets" or path.endswith("/touches") else set()
    return roles


def api_routes(api: FastAPI) -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in iter_route_contexts(api.routes)
                  for method in route.methods or () if method != "HEAD" and route.path not in PUBLIC_PAGES)


def test_every_route_outside_the_schema_is_a_known_public_page(api: FastAPI) -> None:
    paths = {route.path for route in iter_route_contexts(api.routes) if not route.include_in_schema}
    assert "/docs" in paths and paths <= PUBLIC_PAGES


@pytest.mark.parametrize("who", [None, "bad-token", *TOKENS])
def test_every_route_needs_a_token_and_a_role_that_grants_it(api: FastAPI, client: TestClient, who: str | None) -> None:
    routes = api_routes(api)
    assert len(routes) == 96  # 57 + 5 of /vocabularies + /exchange-rates (POST, GET), /exchange-rates/recorded,
    #                           GET /pipelines + 4 of dims (properties and periods) + /health/live, /metrics
    #                           + GET /reminders, PUT /pipelines/{key}/stages/{stage}/reminders
    #                           + 9 of the forecast (/forecast, /targets, /teams, 3 of a deal's, a stage's)
    #                           + GET /forecast/predict, /forecast/backtest
    #                           + 3 of /inspection (slippage, changes, inactive) and /winloss
    #                           + 5 of a campaign's variants (define, exposures, stop, winner, the report)
    #                           + /reports/attribution, /reports/cohorts
    headers = {} if who is None else auth(who) if who in TOKENS else {"Authorization": f"Bearer {who}"}
    for method, path in routes:
        response = client.request(method, path.format(**PATH_VALUES), json={}, headers=headers)
        if (method, path) in PUBLIC:
            assert response.status_code == 200, (method, path)
        elif who not in TOKENS:
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        elif who in expected_roles(method, path):
            # got past auth (201: a body of defaults is a whole lead, every field of which is optional)
            assert response.status_code in (200, 201, 404, 422), (method, path, who, response.text)
        else:
            assert response.status_code == 403, (method, path, who, response.text)
            assert response.json()["error"].startswith(f"role {who!r} has no")


def test_a_missing_token_is_refused_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/funnel")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "authentication required: missing bearer token", "detail": None}


@pytest.mark.parametrize("body", [b"{not json", b'{"name": ' + b'"x",' * 40_000 + b"}", b'{"name": 5}'],
                         ids=["malformed", "over-the-limit", "invalid"])
@pytest.mark.parametrize("who", [None, "bad-token"])
def test_a_stranger_gets_401_whatever_the_body(client: TestClient, body: bytes, who: str | None) -> None:
    headers = {"content-type": "application/json", **({"Authorization": f"Bearer {who}"} if who else {})}

    response = client.post("/customers", content=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == f"authentication required: {'invalid' if who else 'missing'} bearer token"


def test_a_strangers_body_is_never_read(api: FastAPI) -> None:
    """Straight on the ASGI app: the 401 is sent before `receive` is asked for one byte of the body."""
    reads, sent = [], []

    async def receive() -> dict[str, object]:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 10_000_000, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/customers", "raw_path": b"/customers", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"10000000")],
             "http_version": "1.1", "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 1)}
    asyncio.run(api(scope, receive, send))

    assert sent[0]["status"] == 401 and reads == []


def test_a_served_api_answers_a_stranger_401_while_the_body_is_still_coming(tmp_path: Path) -> None:
    """Over a socket: a chunked body that never ends; the 401 comes at once, nobody waits for the body."""
    with running_api(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"), {}) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"POST /customers HTTP/1.1\r\nHost: crm\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\n")
            answer = connection.recv(4096)

    assert answer.startswith(b"HTTP/1.1 401 "), answer


def test_docs_and_health_need_no_token(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/docs").status_code == 200


def test_tokens_file_maps_hashed_tokens_to_names_and_roles(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(orjson.dumps({"tokens": [
        {"sha256": hashlib.sha256(b"s3cret").hexdigest(), "name": "李娜", "role": "sales"}]}))

    registry = TokenRegistry.from_file(path)

    assert registry.authenticate("s3cret") == Principal("李娜", "sales")
    assert registry.authenticate("s3cret ") is None


def test_tokens_file_is_found_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(orjson.dumps({"tokens": [
        {"sha256": hashlib.sha256(b"x").hexdigest(), "name": "王芳", "role": "analyst"}]}))
    monkeypatch.setenv("CRM_API_TOKENS_FILE", str(path))

    assert TokenRegistry.from_env().authenticate("x") == Principal("王芳", "analyst")


@pytest.mark.parametrize(("content", "message"), [
    (b'{"tokens": [{"sha256": "abc", "name": "a", "role": "sales"}]}', "64 lower-case hex digits"),
    (b'{"tokens": [{"sha256": "' + b"a" * 64 + b'", "name": "a", "role": "boss"}]}', "unknown role 'boss'"),
    (b'{"tokens": [{"sha256": "' + b"a" * 64 + b'", "name": " ", "role": "sales"}]}', "non-empty name"),
    (b'{"tokens": {}', "must be JSON like"),
    (b'{"tokens": [], "tokens": []}', "the key 'tokens' appears more than once"),
])
def test_a_malformed_tokens_file_is_refused_with_the_reason(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)

    with pytest.raises(TokenConfigError, match=message):
        TokenRegistry.from_file(path)


def test_tokens_hash_command_prints_the_sha256_to_configure() -> None:
    result = subprocess.run([sys.executable, "-m", "gateways.http.tokens", "hash", "s3cret"],
                            capture_output=True, text=True, check=True)

    assert result.stdout.strip() == hashlib.sha256(b"s3cret").hexdigest()


def test_no_token_appears_in_any_log_of_a_served_api(api: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    """The real server (uvicorn, as `crm serve` configures it) logs requests; the token text never shows."""
    server = uvicorn.Server(server_config(api, "127.0.0.1", 0))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            statuses = [http.get("/funnel", headers=auth("sales")).status_code,
                        http.post("/customers", json={"name": ""}, headers=auth("sales")).status_code,
                        http.get("/funnel", headers={"Authorization": "Bearer wrong-token-77e1"}).status_code,
                        http.get("/tickets/nope", headers=auth("service")).status_code]
    finally:
        server.should_exit = True
        thread.join(5)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).removeHandler(caplog.handler)

    assert statuses == [200, 422, 401, 404]  # "nope" is no UUID and no known external id
    assert "GET /funnel HTTP/1.1" in caplog.text  # the access log was captured …
    for secret in ("tok-sales-8b2e4d", "tok-service-5c7a90", "wrong-token-77e1"):
        assert secret not in caplog.text  # … and holds no token
