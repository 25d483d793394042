"""`crm serve`'s worker processes, kept alive by gunicorn: a worker that dies is replaced within seconds.

Gunicorn's arbiter forks the workers, restarts any that dies (kill -9, out of memory) or stops
answering its heartbeat, and stops them all gracefully on SIGTERM/SIGINT. Each worker runs uvicorn through
the maintained `uvicorn-worker` package and builds its own app (`app_from_environment`), with its own
database connections.

With `reuse_port`, gunicorn (≥ 22) lets each worker bind a listening socket of its own with SO_REUSEPORT,
so the kernel spreads new connections over the workers. (With one shared socket, the first worker to wake
accepts every pending connection: a few keep-alive clients would all land on one worker, leaving the others
idle.) A dead worker's socket leaves the group; its replacement binds a new one.

A scrape of /metrics reaches one worker, yet must count every worker's commands: the workers keep their
metrics in files of one directory per server run (prometheus-client's multiprocess mode, services.metrics),
which the answering worker sums.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from gateways.http.access_log import hide_query_values
from gateways.http.connections import BODY_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS, guarded_protocol
from services.healing import TRANSIENT_DATABASE_ERRORS, Backoff, SealsHidden
from services.metrics import process_ended, shared_between_processes

APP_FACTORY = "gateways.http.app:app_from_environment"
log = logging.getLogger(__name__)
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open (uvicorn's default)
HEARTBEAT = 30  # seconds: gunicorn replaces a worker whose event loop stalls this long
MAX_BOOT_BACKOFF = 5.0  # seconds between attempts to build the app while the database is away


@dataclass(frozen=True)
class Limits:
    """What one worker allows a client (see gateways.http.connections)."""

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_connections: int = MAX_CONNECTIONS


class CrmWorker(UvicornWorker):
    """A uvicorn worker with the slow-client limits, an access log without query values, and an app build
    that waits for the database instead of failing the boot (gunicorn stops the whole server when a worker
    fails to boot: one replaced while PostgreSQL restarts must not take the others with it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits: Limits = self.app.limits
        self.config.http = guarded_protocol(limits.header_timeout, limits.body_timeout, limits.max_connections)
        hide_query_values()
        logging.getLogger().handlers = self.log.error_log.handlers  # our own warnings (timeouts, retries) too
        for handler in self.log.error_log.handlers:
            handler.addFilter(SealsHidden())
        logging.getLogger().setLevel(logging.INFO)

    def load_wsgi(self) -> None:
        backoff = Backoff(longest=MAX_BOOT_BACKOFF)
        while True:
            try:
                super().load_wsgi()
                return
            except TRANSIENT_DATABASE_ERRORS as error:
                pause = backoff.pause()
                log.warning("worker %s cannot build the app yet, retrying in %.1f s: %s", self.pid, pause, error)
                self.notify()  # the arbiter's heartbeat: still alive, only waiting
                time.sleep(pause)


class CrmServer(BaseApplication):
    """Gunicorn, configured in code: `workers` processes of CrmWorker on host:port."""

    def __init__(self, host: str, port: int, workers: int, limits: Limits) -> None:
        self.options = {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": workers,
            "worker_class": f"{__name__}.CrmWorker",
            "reuse_port": True,  # a socket per worker (see the module's docstring)
            "keepalive": KEEP_ALIVE,
            "timeout": HEARTBEAT,
            "graceful_timeout": 30,
            "accesslog": "-",  # uvicorn's access lines, through gunicorn's handler, to stdout
            "proc_name": "crm-serve",
            "control_socket_disable": True,  # one fixed path per user: several servers would share it
            "on_starting": _on_starting,
            "child_exit": _on_worker_exit,
            "on_exit": _on_exit,
        }
        self.limits = limits
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> FastAPI:
        from gateways.http.app import app_from_environment  # in the worker, after the fork

        return app_from_environment()


def _on_starting(server: Any) -> None:
    log.info("serve: starting %d workers on %s", server.cfg.workers, ", ".join(server.cfg.bind),
             extra={"component": "serve", "action": "start", "workers": server.cfg.workers})


def _on_worker_exit(server: Any, worker: Any) -> None:
    """A worker ended: while the server runs (it still listens) the arbiter starts a replacement."""
    process_ended(worker.pid)
    if server.LISTENERS:
        log.warning("serve: worker %s exited; the arbiter starts a replacement", worker.pid,
                    extra={"component": "serve", "action": "restart", "pid": worker.pid})


def _on_exit(server: Any) -> None:
    log.info("serve: stopped", extra={"component": "serve", "action": "stop"})


def serve_workers(host: str, port: int, workers: int, limits: Limits) -> None:
    """Run gunicorn until SIGTERM or SIGINT (then SystemExit(0)); it exits non-zero if it cannot start."""
    with shared_between_processes():  # before the fork: every worker inherits the directory
        CrmServer(host, port, workers, limits).run()
