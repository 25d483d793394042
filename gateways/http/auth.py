"""Who may do what: bearer authentication (401) and role permissions (403).

A permission is "<area>:<action>" with action read or write. Roles:
- admin: everything (recording exchange rates, "rates:write", only admin);
- sales: customers, leads, deals, campaigns (read and write); pipelines, vocabularies, the funnel, segments,
  reports, customer timelines, exchange rates, the forecast, targets and teams (read);
- service: tickets (read and write), customers, reports and timelines (read) and logging customer touches;
- analyst: every read (GET);
- subscriber: a downstream service of crm.events that may open sealed personal data, and nothing else;
- monitor: a metrics scraper (Prometheus): `GET /metrics`, and nothing else.

Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in its thread pool,
a hand-off that costs more than the check itself.

FastAPI reads and parses a request's body before it runs any dependency, so a stranger's malformed or
oversized body would be answered 400/413 (and cost the parsing) instead of 401. `BearerBeforeBody` checks
the token of every request that may carry a body (any method but GET, HEAD and OPTIONS — no such route is
public) before a single byte of the body is received.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from gateways.http.error_responses import ApiError, error_response
from gateways.http.tokens import Principal, TokenRegistry

GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*:*"}),
    "sales": frozenset({"customers:*", "customer_touches:write", "leads:*", "deals:*", "campaigns:*",
                        "pipelines:read", "vocabularies:read", "funnel:read", "segments:read", "reports:read",
                        "timeline:read", "rates:read", "forecast:read", "targets:read", "teams:read"}),
    "service": frozenset({"tickets:*", "customers:read", "customer_touches:write", "timeline:read", "reports:read"}),
    "analyst": frozenset({"*:read"}),
    "subscriber": frozenset({"personal_data:open"}),
    "monitor": frozenset({"metrics:read"}),
}

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="A token from the API's tokens file.")


def allowed(role: str, permission: str) -> bool:
    area, action = permission.split(":")
    grants = GRANTS.get(role, frozenset())
    return any(grant in grants for grant in (permission, f"{area}:*", f"*:{action}", "*:*"))


async def authenticate(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller's principal; 401 with `WWW-Authenticate: Bearer` when the token is missing or unknown."""
    registry: TokenRegistry = request.app.state.tokens
    principal = registry.authenticate(credentials.credentials) if credentials else None
    if principal is None:
        raise ApiError(401, _refusal(credentials is not None), headers=CHALLENGE)
    return principal


CHALLENGE = {"WWW-Authenticate": "Bearer"}
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _refusal(had_credentials: bool) -> str:
    return f"authentication required: {'invalid' if had_credentials else 'missing'} bearer token"


class BearerBeforeBody:
    """ASGI middleware: 401 for a request that may carry a body unless its bearer token is known,
    answered without calling `receive` (the body is never read). Routes still authorise as before."""

    def __init__(self, app: ASGIApp, tokens: TokenRegistry) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in BODILESS_METHODS:
            scheme, token = get_authorization_scheme_param(_header(scope, b"authorization"))
            given = scheme.lower() == "bearer" and bool(token)  # as HTTPBearer reads it
            if not given or self.tokens.authenticate(token) is None:
                log.info("refused %s %s before reading its body: no known bearer token", scope["method"], scope["path"])
                await error_response(401, _refusal(given), headers=CHALLENGE)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def allow(permission: str) -> Callable[..., Principal]:
    """A dependency: the authenticated principal, if their role grants `permission` (else 403)."""

    async def authorize(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not allowed(principal.role, permission):
            area, action = permission.split(":")
            raise ApiError(403, f"role {principal.role!r} has no {action} access to {area}")
        return principal

    return authorize
