"""A report answered as JSON (default) or as CSV: `?format=csv` (or `Accept: text/csv`), one flat table of
it (`?table=`, default the report's main one; see `gateways.report_tables`), `?bom=true` for Excel.

A query parameter first, because a report's CSV is mostly fetched by a URL pasted into a spreadsheet
(Excel's "From Web", Google Sheets' IMPORTDATA) or a browser, which cannot set a header; `Accept` is
honoured too for HTTP clients that negotiate. The parameter wins when both are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import Response

from gateways.http.error_responses import ApiError
from gateways.http.responses import json_response
from gateways.report_tables import TableMaker, UnknownTable, table_csv

CSV = "text/csv"
# For a report route's decorator (`responses=CSV_ANSWER`): its 200 may be CSV too, as OpenAPI should say.
CSV_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {CSV: {"schema": {"type": "string"}}}}}


@dataclass(frozen=True)
class ReportFormat:
    csv: bool
    table: str | None
    bom: bool


async def report_format(
    request: Request,
    format: Annotated[Literal["json", "csv"] | None,
                      Query(description="json (default) or csv; without it, `Accept: text/csv` asks for CSV.")] = None,
    table: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$",
                                       description="With CSV: which table of the report (default its main one).")] = None,
    bom: Annotated[bool, Query(description="With CSV: a UTF-8 byte-order mark first (Excel and Chinese text).")] = False,
) -> ReportFormat:
    as_csv = format == "csv" if format else CSV in request.headers.get("accept", "")
    return ReportFormat(as_csv, table, bom)


def report_response(fmt: ReportFormat, data: Any, tables: TableMaker, name: str) -> Response:
    """`data` as JSON, or one of `tables()` as a CSV download named after the report and the table."""
    if not fmt.csv:
        return json_response(data)
    try:
        text = table_csv(tables(), fmt.table, fmt.bom)
    except UnknownTable as error:
        raise ApiError(400, str(error)) from None
    filename = f"{name}-{fmt.table}.csv" if fmt.table else f"{name}.csv"
    return Response(text.encode("utf-8"), media_type=f"{CSV}; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})
