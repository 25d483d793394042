"""Several uvicorn worker processes serving one port, each with its own app and database connections.

Each worker binds a listening socket of its own with SO_REUSEPORT, so the kernel spreads new connections
over the workers. (With one shared socket, the first worker to wake accepts every pending connection: a few
keep-alive clients would all land on one worker, leaving the others idle.)
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading

import uvicorn

APP_FACTORY = "gateways.http.app:app_from_environment"


def serve_workers(config: uvicorn.Config, workers: int) -> int:
    """Run `workers` processes of `config` (whose app is a factory's import string) until SIGINT or SIGTERM,
    or until one of them exits; then stop the others. Returns 0, or 1 when a worker failed."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_run_worker, args=(config,), name=f"crm-serve-{n}") for n in range(workers)]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    for process in processes:
        process.start()
    while not stop.is_set() and all(process.is_alive() for process in processes):
        stop.wait(0.2)
    for process in processes:
        if process.is_alive():
            process.terminate()  # uvicorn finishes the requests in flight, then exits
    for process in processes:
        process.join()
    return 0 if stop.is_set() else 1


def _run_worker(config: uvicorn.Config) -> None:
    config.configure_logging()  # a spawned process starts with logging unconfigured: no access log
    config.load()  # build the app first: a worker listens only once it can answer
    uvicorn.Server(config).run(sockets=[_listener(config.host, config.port)])


def _listener(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener
