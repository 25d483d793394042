"""Request bodies are read as JSON that names each key once (400 naming the repeated key otherwise).

FastAPI reads a body with the request's `json()`; routes of `StrictJsonRoute` hand their endpoint a
request whose `json()` is `services.strict_json.loads` (the documented way to customise body reading:
a custom `APIRoute` and `Request`). It is no slower than Starlette's own `json.loads` (see strict_json).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from services.strict_json import DuplicateKey, loads

log = logging.getLogger(__name__)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except DuplicateKey as error:
                log.info("refused %s %s: %s", self.method, self.url.path, error)
                raise HTTPException(400, f"request body refused: {error}") from None
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
