"""The access log keeps which query parameters a request had, never their values.

Query strings carry what people search for — `/customers?name=张三` — and an access log is copied, shipped
and kept far longer than the data it describes (forgetting a customer cannot reach it). So each value is
replaced by `…`: `/customers?name=…&limit=…`, and so is a name that is not a plain parameter name (`?张三`
logs as `?…=…`). The path is kept; ids in paths are random UUIDs.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

ACCESS_LOGGER = "uvicorn.access"  # uvicorn logs '%s - "%s %s HTTP/%s" %d' (client, method, path?query, …)
HIDDEN = "…"
PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-\[\]]{0,39}")  # `?张三` has no name, only a value


def without_query_values(target: str) -> str:
    """`/customers?name=张三&x=1` → `/customers?name=…&x=…`; a target without a query is kept as it is."""
    path, _, query = target.partition("?")
    if not query:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    names = [name if PARAMETER_NAME.fullmatch(name) else HIDDEN for name, _ in pairs]
    return f"{path}?{'&'.join(f'{name}={HIDDEN}' for name in names)}" if names else f"{path}?{HIDDEN}"  # `?;;`


class QueryValuesHidden(logging.Filter):
    """Rewrites uvicorn's access-log record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], without_query_values(args[2]), *args[3:])
        return True


def hide_query_values(logger: logging.Logger | None = None) -> None:
    """Install the filter on uvicorn's access logger (once, however often it is called)."""
    logger = logger or logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, QueryValuesHidden) for existing in logger.filters):
        logger.addFilter(QueryValuesHidden())
