"""Routes of the dashboard page and its static files (plotly.js is served locally, never from a CDN)."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).with_name("static")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SCRIPTS = ("dashboard.js", "forecast.js", "backtest.js", "reminders.js", "inspection.js", "campaigns.js")
FILES = {**{name: STATIC / name for name in (*SCRIPTS, "dashboard.css")}, "plotly.min.js": PLOTLY_JS}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard")
def page() -> FileResponse:
    """The page itself holds no data: it asks the API, with the bearer token the user types in."""
    return FileResponse(STATIC / "dashboard.html", media_type="text/html; charset=utf-8")


@router.get("/dashboard/static/{name}")
def static_file(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(FILES[name], headers={"Cache-Control": "max-age=3600"})
