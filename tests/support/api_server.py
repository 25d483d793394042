"""A real uvicorn server for tests that need HTTP over a socket (browser, concurrency, outages)."""

from __future__ import annotations

import fcntl
import hashlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import orjson
import uvicorn

from gateways.http.app import create_app
from gateways.http.tokens import TokenRegistry
from services.settings import Database


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_HANDED_OUT: list[IO[str]] = []  # a lock file per port this process handed out, held until it ends


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, and that no other test process is handed.

    Why the lock: deploy/run-tests.sh runs two pytest processes at once, and a port bound to 0 then released
    may be handed to both before either server binds it; each port handed out is claimed by an flock on a
    file named after it, which the kernel releases when the process ends."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        claim = open(Path(tempfile.gettempdir()) / f"crm-test-port-{port}.lock", "a")
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.close()
            continue
        _HANDED_OUT.append(claim)
        return port


def write_tokens_file(folder: Path, tokens: dict[str, tuple[str, str]]) -> Path:
    """folder/tokens.json for `crm serve --tokens-file` (tokens: token → (name, role)), tokens stored hashed."""
    path = folder / "tokens.json"
    path.write_bytes(orjson.dumps({"tokens": [
        {"sha256": hashlib.sha256(token.encode()).hexdigest(), "name": name, "role": role}
        for token, (name, role) in tokens.items()]}))
    return path


@contextmanager
def running_api(database: Database, tokens: dict[str, tuple[str, str]], follow_log: bool = False) -> Iterator[str]:
    """Serve the API on 127.0.0.1 (tokens: token → (name, role)); yields its base URL, stops it after.
    `follow_log`: with its projector in the background, as `crm serve` runs it."""
    with tempfile.TemporaryDirectory() as folder:
        tokens_file = write_tokens_file(Path(folder), tokens)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(database, TokenRegistry.from_file(tokens_file), follow_log),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
