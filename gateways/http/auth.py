"""Who may do what: bearer authentication (401) and role permissions (403).

A permission is "<area>:<action>" with action read or write. Roles:
- admin: everything;
- sales: customers, leads, deals, campaigns (read and write); pipelines, the funnel, segments, reports and
  customer timelines (read);
- service: tickets (read and write), customers, reports and timelines (read) and logging customer touches;
- analyst: every read (GET);
- subscriber: a downstream service of crm.events that may open sealed personal data, and nothing else.

Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in its thread pool,
a hand-off that costs more than the check itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateways.http.errors import ApiError
from gateways.http.tokens import Principal, TokenRegistry

GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*:*"}),
    "sales": frozenset({"customers:*", "customer_touches:write", "leads:*", "deals:*", "campaigns:*",
                        "pipelines:read", "funnel:read", "segments:read", "reports:read", "timeline:read"}),
    "service": frozenset({"tickets:*", "customers:read", "customer_touches:write", "timeline:read", "reports:read"}),
    "analyst": frozenset({"*:read"}),
    "subscriber": frozenset({"personal_data:open"}),
}

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
        reason = "invalid bearer token" if credentials else "missing bearer token"
        raise ApiError(401, f"authentication required: {reason}", headers={"WWW-Authenticate": "Bearer"})
    return principal


def allow(permission: str) -> Callable[..., Principal]:
    """A dependency: the authenticated principal, if their role grants `permission` (else 403)."""

    async def authorize(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not allowed(principal.role, permission):
            area, action = permission.split(":")
            raise ApiError(403, f"role {principal.role!r} has no {action} access to {area}")
        return principal

    return authorize
