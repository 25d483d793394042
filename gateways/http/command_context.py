"""Running one command from an HTTP request: who and when (Meta), If-Match, Idempotency-Key, the answer.

A route depends on `command(permission)` and calls `created(...)` or `changed(...)` with the command's type,
its body and the ids in the URL; the command, which carries If-Match as its `expected_version`, goes to
`CrmApplication.handle`; refusals become error responses. Each command's time from here to its answer
(events and receipt committed) is observed by type and outcome (services.metrics).
(No `from __future__ import annotations` here: FastAPI must evaluate the dependency's annotations,
which use the closure's `permission`.)
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4

from fastapi import Depends, Header, Request
from fastapi.responses import Response

from domain.base import Meta
from gateways.http.auth import allow
from gateways.http.error_responses import ApiError, outcome_error
from gateways.http.idempotency import fingerprint, is_final, receipt_of, replay
from gateways.http.responses import OrjsonResponse, json_response
from gateways.http.schemas import CommandBody
from gateways.http.tokens import Principal
from services.application import ConcurrencyConflict, CrmApplication
from services.commands import Change, Command, Creation, DefinePipeline
from services.metrics import instruments

_IF_MATCH = re.compile(r'(?:W/)?"?(\d{1,18})"?')
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]{1,200}")
C = TypeVar("C", bound=Command)


@dataclass
class CommandContext:
    """Everything a command route needs besides its body.

    With an Idempotency-Key, `crm` is a staged view of the application: the command's saves wait for
    `run` to commit them together with the answer's receipt."""

    crm: CrmApplication
    principal: Principal
    request: Request
    correlation_id: str
    if_match: int | None
    idempotency_key: str | None
    asked: str = "unknown"  # the command's type, once `command_of` built it (the latency histogram's label)

    def expected_version(self, body: CommandBody) -> int | None:
        """The version the caller saw: If-Match or the body's `expected_version` (they must agree)."""
        in_body = getattr(body, "expected_version", None)
        if self.if_match is not None and in_body is not None and self.if_match != in_body:
            raise ApiError(400, f"If-Match ({self.if_match}) and expected_version ({in_body}) disagree")
        return self.if_match if self.if_match is not None else in_body

    def meta(self, body: CommandBody) -> Meta:
        if body.occurred_at is None:
            return Meta.now(self.principal.name, self.correlation_id)
        return Meta(occurred_at=body.occurred_at, actor=self.principal.name, correlation_id=self.correlation_id)

    def command_of(self, command_type: type[C], body: CommandBody, **from_url: Any) -> C:
        """The command the request asks for: the body's fields, the ids in the URL and, for a change, the
        version the caller saw (If-Match or the body's `expected_version`), which the command carries to the
        application's check."""
        self.asked = command_type.__name__
        if issubclass(command_type, Change):
            return command_type(**from_url, **body.fields(), expected_version=self.expected_version(body))
        return command_type(**from_url, **body.fields())

    def created(self, command_type: type[Creation | DefinePipeline], body: CommandBody, collection: str,
                location_id: Callable[[UUID], str] = str) -> Response:
        """Run a command that creates an aggregate: 201, its id, version 1 and its Location."""
        if self.expected_version(body) is not None:
            raise ApiError(400, "If-Match and expected_version apply to changes of an existing aggregate")
        asked = self.command_of(command_type, body)

        def respond(meta: Meta) -> OrjsonResponse:
            new_id = self.crm.handle(asked, meta)
            return json_response({"id": new_id, "version": 1}, 201, version=1,
                                 headers={"Location": f"/{collection}/{location_id(new_id)}"})
        return self.run(body, respond)

    def changed(self, command_type: type[Change], body: CommandBody, **from_url: Any) -> Response:
        """Run a command that changes an aggregate: 200, its id and new version (also as ETag)."""
        asked = self.command_of(command_type, body, **from_url)

        def respond(meta: Meta) -> OrjsonResponse:
            version = self.crm.handle(asked, meta)
            return json_response({"id": asked.aggregate_id, "version": version}, version=version)
        return self.run(body, respond)

    def run(self, body: CommandBody, respond: Callable[[Meta], Response]) -> Response:
        """Run once per Idempotency-Key: a retry gets the kept answer and writes nothing. Timed."""
        started, status = time.perf_counter(), 500
        try:
            response = self._run_once(body, respond)
            status = response.status_code
            return response
        except Exception as error:
            refusal = outcome_error(error)
            status = refusal.status_code if refusal is not None else 500
            raise
        finally:
            instruments().observe_command(self.asked, outcome_of(status), time.perf_counter() - started)

    def _run_once(self, body: CommandBody, respond: Callable[[Meta], Response]) -> Response:
        if self.idempotency_key is None:
            return respond(self.meta(body))
        owner, key = self.principal.name, self.idempotency_key
        request_print = fingerprint(self.request.method, self.request.url.path, body.model_dump(mode="json"),
                                    self.expected_version(body))
        kept = self.crm.receipt(owner, key)
        if kept is not None:
            return replay(kept, request_print)
        try:
            response = respond(self.meta(body))
            self.crm.commit(receipt_of(owner, key, request_print, response))
        except Exception as error:
            refusal = outcome_error(error)
            if refusal is not None and is_final(refusal.status_code):
                kept = self.crm.keep_refusal(receipt_of(owner, key, request_print, refusal))  # None: ours was kept
                return refusal if kept is None else replay(kept, request_print)
            kept = self.crm.receipt(owner, key) if isinstance(error, ConcurrencyConflict) else None
            if kept is None:
                raise  # not kept: a retry runs the command again
            return replay(kept, request_print)  # a twin of this request committed first
        return response


def outcome_of(status: int) -> str:
    """A command's outcome for the latency histogram: ok, conflict (409: a stale version or a twin request),
    refused (another 4xx: a rule or an unknown id) or error (5xx: the database away, a bug)."""
    if status < 400:
        return "ok"
    if status == 409:
        return "conflict"
    return "refused" if status < 500 else "error"


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(value.strip())
    if not match:
        raise ApiError(400, f'If-Match must be the version in quotes, like "3" (got {value[:40]!r})')
    return int(match.group(1))


def _require_json(request: Request) -> None:
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and not (content_type == "application/json" or content_type.endswith("+json")):
        raise ApiError(415, f"send the command as application/json (got {content_type or 'no content type'!r})")


def _text_header(name: str, value: str | None) -> str | None:
    if value is not None and not _TOKEN_TEXT.fullmatch(value):
        raise ApiError(400, f"{name} must be 1 to 200 visible ASCII characters")
    return value


def command(permission: str) -> Callable[..., CommandContext]:
    """A dependency for a command route; If-Match pins the version of the aggregate a change applies to."""

    async def context(
        request: Request,
        principal: Annotated[Principal, Depends(allow(permission))],
        if_match: Annotated[str | None, Header(alias="If-Match",
                                               description='The version you saw, e.g. "3"; stale → 409.')] = None,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                      description="A retry with the same key gets the first "
                                                                  "answer; nothing is written twice.")] = None,
        correlation_id: Annotated[str | None, Header(alias="X-Correlation-Id",
                                                     description="Defaults to a new id.")] = None,
    ) -> CommandContext:
        _require_json(request)
        key = _text_header("Idempotency-Key", idempotency_key)
        crm: CrmApplication = request.app.state.crm
        return CommandContext(
            crm=crm if key is None else crm.staged(),
            principal=principal,
            request=request,
            correlation_id=_text_header("X-Correlation-Id", correlation_id) or uuid4().hex,
            if_match=_if_match(if_match),
            idempotency_key=key,
        )

    return context

