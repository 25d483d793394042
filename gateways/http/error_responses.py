"""Every refusal as JSON `{"error": message, "detail": ...}` with the right status; nothing is written."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from domain.errors import DomainError
from gateways.http.responses import OrjsonResponse
from services.application import ConcurrencyConflict, NotFound
from services.healing import TRANSIENT_DATABASE_ERRORS
from services.projection_runtime.projector import ReadModelStopped


# The database is down or unreachable (a restart, a network cut): the client may retry shortly.
DATABASE_UNAVAILABLE = TRANSIENT_DATABASE_ERRORS
RETRY_AFTER_SECONDS = "2"


class ApiError(Exception):
    """A refusal decided by the gateway itself (bad header, wrong content type, idempotency clash)."""

    def __init__(self, status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers


def error_response(status: int, message: str, detail: Any = None,
                   headers: Mapping[str, str] | None = None) -> OrjsonResponse:
    return OrjsonResponse({"error": message, "detail": detail}, status_code=status, headers=headers)


def outcome_error(error: Exception) -> OrjsonResponse | None:
    """The response for a refusal by the application (rule, unknown id, conflict), else None."""
    if isinstance(error, NotFound):
        return error_response(404, str(error))
    if isinstance(error, DomainError):
        return error_response(422, str(error))
    if isinstance(error, ConcurrencyConflict):
        return error_response(409, str(error))
    if isinstance(error, ApiError):
        return error_response(error.status, error.message, error.detail, error.headers)
    if isinstance(error, ReadModelStopped):  # its answer would be incomplete; an operator must repair it
        return error_response(503, str(error), [failure.__dict__ for failure in error.failures])
    if isinstance(error, DATABASE_UNAVAILABLE):
        return error_response(503, "the database is unavailable; nothing was written, try again shortly",
                              headers={"Retry-After": RETRY_AFTER_SECONDS})
    return None


def _validation_response(error: RequestValidationError) -> OrjsonResponse:
    issues = [{"field": ".".join(str(part) for part in issue["loc"]), "message": issue["msg"], "type": issue["type"]}
              for issue in error.errors()]
    broken_json = [issue for issue in error.errors() if issue["type"] == "json_invalid"]
    if broken_json:
        reason = broken_json[0].get("ctx", {}).get("error", "")
        return error_response(400, f"request body is not valid JSON: {reason}", issues)
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return error_response(422, f"invalid request: {first['field']}: {first['message']}{more}", issues)


@functools.cache
def _path_pattern(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


def allowed_methods(app: FastAPI, scope: Any) -> list[str]:
    """The methods the API document lists for this path: those of every route at the most specific template
    matching it (fewest parameters: /customers/{id}/tags/removals takes POST, not /customers/{id}/tags/{tag}'s
    DELETE). Starlette's 405 names only the first route's: GET and POST /exchange-rates are two routes, so it
    said `Allow: POST` to a PUT, and a client (or schemathesis) would conclude the documented GET does not exist."""
    matching = [context for context in iter_route_contexts(app.routes)
                if context.path and _path_pattern(context.path).match(scope["path"])]
    if not matching:
        return []
    template = min((context.path for context in matching), key=lambda path: path.count("{"))
    return sorted({method for context in matching if context.path == template for method in context.methods or ()})


def install_error_handlers(app: FastAPI) -> None:
    async def application_error(request: Request, error: Exception) -> OrjsonResponse:
        response = outcome_error(error)
        assert response is not None
        return response

    async def validation_error(request: Request, error: Exception) -> OrjsonResponse:
        assert isinstance(error, RequestValidationError)
        return _validation_response(error)

    async def http_error(request: Request, error: Exception) -> OrjsonResponse:
        assert isinstance(error, HTTPException)
        headers = error.headers
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request.scope))}
        return error_response(error.status_code, str(error.detail), headers=headers)

    for error_class in (NotFound, DomainError, ConcurrencyConflict, ApiError, ReadModelStopped, *DATABASE_UNAVAILABLE):
        app.add_exception_handler(error_class, application_error)
    async def unexpected_error(request: Request, error: Exception) -> OrjsonResponse:
        return error_response(500, "internal error; nothing more is said here, the server log has the details")

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_exception_handler(HTTPException, http_error)
