"""Defences against slow clients, on uvicorn's HTTP protocol: timeouts for a request's headers and body, and
a cap on the connections one worker holds open.

Uvicorn times out only idle keep-alive connections, and its timer is reset by every byte: a client that
sends half a request and then waits held a connection (and its memory) forever — 300 of them stayed open
until the server was restarted. Uvicorn has no setting for this (its issue #157 lists
`--timeout-request-start` as not done), so this subclass of its httptools protocol keeps one deadline per
request: the headers must be complete within `header_timeout` seconds of the connection opening (or of the
request's first byte, on a kept-alive connection), then the body within `body_timeout` seconds. A request
that misses its deadline is answered 408 if nothing was answered yet, and its connection is closed. The
deadline ends when the request has been received, so a slow answer is never cut short.

`max_connections` caps the connections of one worker: one over the cap is answered 503 and closed at once,
before it can occupy anything (uvicorn's own `limit_concurrency` looks only at complete requests).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds; a browser or an HTTP library sends its headers in one write
BODY_TIMEOUT = 30.0  # seconds; bodies are ≤ 64 KiB (gateways.http.app.MAX_BODY_BYTES)
MAX_CONNECTIONS = 500  # per worker; 3 workers stay well under the default limit of 1,024 open files each


def _answer(status: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


REQUEST_TIMEOUT = _answer("408 Request Timeout", "The request did not arrive in time.")
TOO_MANY_CONNECTIONS = _answer("503 Service Unavailable", "Too many connections; retry later.")


class GuardedHttpProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with a deadline per request and a cap on open connections."""

    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:  # this one is already counted
            log.warning("refused a connection from %s: this worker already has %d open (the limit)",
                        _client(self.client), self.max_connections)
            self._close(TOO_MANY_CONNECTIONS)
            return
        self._arm(self.header_timeout, "headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out, part, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self, part: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.warning("closed a connection from %s: the request's %s did not arrive within %g s",
                    _client(self.client), part, seconds)
        answering = self.cycle is not None and not self.cycle.response_complete and self.cycle.response_started
        self._close(None if answering else REQUEST_TIMEOUT)  # the app's receive() then sees a disconnect

    def _close(self, answer: bytes | None) -> None:
        if answer is not None:
            self.transport.write(answer)
        self.transport.close()


def _client(address: tuple[str, int] | None) -> str:
    return "%s:%d" % address if address else "an unknown client"


def guarded_protocol(header_timeout: float, body_timeout: float, max_connections: int) -> type[GuardedHttpProtocol]:
    """The protocol class with these limits (uvicorn builds one protocol object per connection from it)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections})
