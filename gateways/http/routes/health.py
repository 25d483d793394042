"""Liveness: the one route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the API up? (no token needed)")
def health() -> dict[str, str]:
    return {"status": "ok"}
