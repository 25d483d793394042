"""Every refusal as JSON `{"error": message, "detail": ...}` with the right status; nothing is written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from fastapi.routing import iter_route_contexts
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


def allowed_methods(request: Request) -> str:
    """The methods the API document lists for the request's path: those of every route at the most specific
    template matching it (fewest parameters: /customers/{id}/tags/removals, not /customers/{id}/tags/{tag}).
    Why: Starlette's 405 names only the first matching route's methods, so a path served by two routes
    (GET and POST /exchange-rates, /pipelines) answered `Allow: POST`."""
    path = request.url.path
    matching = [route for route in iter_route_contexts(request.app.routes)
                if route.path and compile_path(route.path)[0].match(path)]
    if not matching:
        return ""
    template = min((route.path for route in matching), key=lambda candidate: candidate.count("{"))
    return ", ".join(sorted({method for route in matching if route.path == template for method in route.methods or ()}))


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
        headers = {**(error.headers or {}), "Allow": allowed_methods(request)} if error.status_code == 405 \
            else error.headers
        return error_response(error.status_code, str(error.detail), headers=headers)

    for error_class in (NotFound, DomainError, ConcurrencyConflict, ApiError, ReadModelStopped, *DATABASE_UNAVAILABLE):
        app.add_exception_handler(error_class, application_error)
    async def unexpected_error(request: Request, error: Exception) -> OrjsonResponse:
        return error_response(500, "internal error; nothing more is said here, the server log has the details")

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_exception_handler(HTTPException, http_error)
