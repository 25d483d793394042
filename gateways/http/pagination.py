"""Pagination of every list the API returns: `limit` (1–500, default 50) and `offset`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many items.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many items first.")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


def page(items: Sequence[Any], params: PageParams) -> dict[str, Any]:
    """One page of a fully known list: its items, the total and where the next page starts (or null)."""
    end = params.offset + params.limit
    return {
        "items": list(items[params.offset:end]),
        "total": len(items),
        "limit": params.limit,
        "offset": params.offset,
        "next_offset": end if end < len(items) else None,
    }
