"""JSON responses rendered by orjson: UUIDs and datetimes natively, Decimal amounts as exact strings."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import JSONResponse


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


class OrjsonResponse(JSONResponse):
    """The API's default response class."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def etag(version: int) -> str:
    return f'"{version}"'


def json_response(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None,
                  version: int | None = None) -> OrjsonResponse:
    """A JSON response; with `version`, an ETag header carrying it."""
    all_headers = dict(headers or {})
    if version is not None:
        all_headers["ETag"] = etag(version)
    return OrjsonResponse(content, status_code=status_code, headers=all_headers)
