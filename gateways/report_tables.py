"""Reports as flat tables and CSV text, shared by the CLI (`--csv`) and HTTP (`?format=csv`).

A report's JSON is a tree (a funnel has stage rows, stuck items and totals); a CSV file is one rectangle,
which is what a spreadsheet or `pandas.read_csv` reads. So each report is named as a few flat tables (one
row per stage, campaign, tier, …) built from its JSON-able dict, so that CSV and JSON always carry the
same values; a CSV answer is one of them: the report's main table (the first) unless another is asked
for by name (`--table` / `?table=`). One table per answer rather than several sections in one file,
because sections break every CSV reader that expects a header line then rows.

Cells: None is an empty cell (a missing rate stays missing: its reason is in the `*_note` column beside
it), rates are fractions (0.25, not "25 %"), nested objects become dotted columns (`totals.cost_cents`),
lists inside a row become JSON text. Text is UTF-8; Excel reads a UTF-8 file as the local ANSI code page
unless it starts with a byte-order mark (Chinese names turn to mojibake when a file is double-clicked),
so a BOM is an option (`bom=True`), off by default since most other readers show it as a stray character.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson

Cell = str | int | float | bool | None
Rows = list[dict[str, Any]]
Tables = dict[str, Rows]
BOM = "\ufeff"


class UnknownTable(ValueError):
    """A table name the report has not."""

    def __init__(self, name: str, names: Iterable[str]) -> None:
        super().__init__(f"this report has no table {name!r}; its tables are: {', '.join(names)}")


def flat(row: Mapping[str, Any], prefix: str = "") -> dict[str, Cell]:
    """One row's cells: nested mappings as dotted columns, lists as JSON text, scalars as they are."""
    cells: dict[str, Cell] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            cells.update(flat(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            cells[name] = orjson.dumps(value).decode()
        else:
            cells[name] = value
    return cells


def csv_text(rows: Sequence[Mapping[str, Any]], bom: bool = False, columns: Sequence[str] = ()) -> str:
    """The rows as CSV: a header of every column in first-seen order (or `columns` for a table without rows),
    then one line per row; CRLF line ends, as RFC 4180 and the csv module's default say."""
    cells = [flat(row) for row in rows]
    header = list(dict.fromkeys([*columns, *(name for row in cells for name in row)]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="")
    writer.writeheader()
    writer.writerows({name: _cell(value) for name, value in row.items()} for row in cells)
    return (BOM if bom else "") + buffer.getvalue()


def _cell(value: Any) -> Cell:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()  # as in the JSON, not str()'s "2026-03-01 09:00:00+00:00"
    return value if value is None or isinstance(value, (int, float, str)) else str(value)  # UUID, Decimal


def pick(tables: Tables, name: str | None) -> tuple[str, Rows]:
    """The table called `name`, or the first (the report's main table) when None."""
    if name is None:
        return next(iter(tables.items()))
    if name not in tables:
        raise UnknownTable(name, tables)
    return name, tables[name]


def table_csv(tables: Tables, name: str | None = None, bom: bool = False) -> str:
    """One table as CSV; an empty `unconverted` table still has its header (a reader finds the columns)."""
    picked, rows = pick(tables, name)
    return csv_text(rows, bom, UNCONVERTED_COLUMNS if picked == "unconverted" else ())


def capped(items: Sequence[Any], limit: int | None) -> list[Any]:
    """The first `limit` items (all with None): lists inside reports are capped, their total said apart."""
    return list(items if limit is None else items[:limit])


# --- the tables of each report (from its JSON-able dict) ------------------------------------------------

# Money (the rule of every table below): a converted amount has its currency in its row (`currency`, or
# `totals.currency` beside dotted totals), and what could not be converted stays in its own currency, never
# added to another nor dropped: `unconverted.<CUR>` columns of the row it belongs to, or, for tables whose
# rows cannot say it (attribution, lifetime values), the report's `unconverted` table, one row per currency.
# An amount without a rate counts 0 in a converted figure, so the `unconverted` cells beside it are the
# rest of it (issue 12's review: a won USD deal with no rate was a bare 0 in the summary, nowhere else).

SUMMARY_OF_FUNNEL = ("pipeline", "as_of", "open_items", "won", "lost", "currency", "won_value_cents",
                     "won_unconverted", "win_rate", "win_rate_note", "average_cycle_days", "bottleneck",
                     "stuck_total", "unconverted")


def funnel_tables(report: Mapping[str, Any]) -> Tables:
    """`stages` (one row per stage), `stuck` (the listed stuck items, each amount in its own currency),
    `summary` (one row: `won_unconverted.<CUR>` the won values without a rate, `unconverted.<CUR>` those and
    the open ones) and `unconverted` (the summary's `unconverted`, one row per currency)."""
    return {"stages": in_currency(report["rows"], report.get("currency")), "stuck": list(report["stuck"]),
            "summary": [{key: report[key] for key in SUMMARY_OF_FUNNEL if key in report}],
            "unconverted": unconverted_rows(report.get("unconverted", {}))}


def with_external_ids(report: Mapping[str, Any], external_ids: Mapping[Any, str]) -> dict[str, Any]:
    """The funnel's JSON-able dict with each stuck item's id at its source (`external_ids`: item id → it;
    "" when it has none), so that a user finds the deal in the system it came from."""
    return {**report, "stuck": [{**item, "external_id": external_ids.get(UUID(item["item_id"]), "")}
                                for item in report["stuck"]]}


def in_currency(rows: Iterable[Mapping[str, Any]], currency: str | None, before: str = "value_cents") -> Rows:
    """The rows with a `currency` cell (the report's, of their converted amounts) just before `before`."""
    return [dict(row) if currency is None else _inserted(row, before, "currency", currency) for row in rows]


def _inserted(row: Mapping[str, Any], before: str, name: str, value: Any) -> dict[str, Any]:
    """The row with `name: value` just before its cell `before` (last when it has none)."""
    result: dict[str, Any] = {}
    for key, cell in row.items():
        if key == before:
            result[name] = value
        result[key] = cell
    result.setdefault(name, value)
    return result


def funnel_compare_tables(first: Mapping[str, Any], second: Mapping[str, Any]) -> Tables:
    """`stages`: per stage, its figures at both instants side by side; `summary`: one row per instant."""
    stages = [{"stage": a["stage"], "label": a["label"], "currency": first.get("currency"), **_suffixed(a, "first"),
               **_suffixed(b, "second"), "items_change": b["items"] - a["items"]}
              for a, b in zip(first["rows"], second["rows"])]
    return {"stages": stages, "summary": [*funnel_tables(first)["summary"], *funnel_tables(second)["summary"]]}


def _suffixed(row: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    return {f"{key}_{suffix}": value for key, value in row.items() if key not in ("stage", "label")}


def funnel_weeks_tables(weeks: Sequence[Mapping[str, Any]]) -> Tables:
    """`weeks`: one row per week (open items per stage, won, lost, win rate); `stages`: one row per week and
    stage (the long form, for a pivot)."""
    wide = [{"as_of": w["as_of"], **{f"items.{r['stage']}": r["items"] for r in w["rows"]},
             **{key: w[key] for key in SUMMARY_OF_FUNNEL if key in w and key not in ("pipeline", "as_of")}}
            for w in weeks]
    long = [{"as_of": w["as_of"], **row} for w in weeks for row in in_currency(w["rows"], w.get("currency"))]
    return {"weeks": wide, "stages": long}


def funnel_grouped_tables(report: Mapping[str, Any]) -> Tables:
    """`groups` (one row per group: its key columns, `key.<axis>`, then the funnel's summary), `stages` (one
    row per group and stage, the honest per-stage figures) and `stuck` (each group's listed stuck items)."""
    groups = report["groups"]
    return {"groups": [{"key": g["key"], **funnel_tables(g)["summary"][0]} for g in groups],
            "stages": [{"key": g["key"], **row} for g in groups for row in g["rows"]],
            "stuck": [{"key": g["key"], **item} for g in groups for item in g["stuck"]]}


def funnel_periods_tables(report: Mapping[str, Any]) -> Tables:
    """`periods`: one row per period (per group and period with `by`, its key columns first)."""
    if "groups" in report:
        return {"periods": [{"key": g["key"], **row} for g in report["groups"] for row in g["periods"]]}
    return {"periods": list(report["periods"])}


def campaigns_tables(report: Mapping[str, Any]) -> Tables:
    """`campaigns` and `channels` (their totals in `totals.currency`; a campaign's `currency` is its budget's),
    `attribution`, `clv_by_channel` and `clv_by_first_touch` (in `currency`), `unconverted` (per currency,
    every cost and won revenue without a rate: attribution and lifetime values leave them out)."""
    currency = report.get("currency")
    tables = {name: [{**row, "totals": {"currency": currency, **row["totals"]}} for row in report[name]]
              for name in ("campaigns", "channels")}
    for name in ("attribution", "clv_by_channel", "clv_by_first_touch"):
        tables[name] = [{**row, "currency": currency} for row in report[name]]
    return {**tables, "unconverted": unconverted_rows(report.get("unconverted", {}))}


def campaigns_grouped_tables(report: Mapping[str, Any]) -> Tables:
    """`groups` (one row per value of `by` and campaign: `key.<by>`, the campaign, its totals in that group;
    cost, ROI and CAC empty with `totals.cost_note`) and `channels` (likewise per value and channel)."""
    return {name: [{"key": g["key"], **row} for g in report["groups"]
                   for row in campaigns_tables(g)[name if name != "groups" else "campaigns"]]
            for name in ("groups", "channels")}


UNCONVERTED_COLUMNS = ("currency", "cents")


def unconverted_rows(unconverted: Mapping[str, int]) -> Rows:
    """The `unconverted` table: one row per currency, its cents that had no rate into the report's currency."""
    return [{"currency": currency, "cents": cents} for currency, cents in sorted(unconverted.items())]


def tickets_tables(report: Mapping[str, Any]) -> Tables:
    """`funnel` (the service funnel's steps), `backlog`, `times`, `sla`, `breaching`, `csat`."""
    backlog = report["backlog"]
    sla = report["sla"]
    csat = report["csat"]
    return {
        "funnel": list(report["funnel"]["steps"]),
        "backlog": [{"by": by, "value": value, "tickets": count}
                    for by in ("status", "priority", "assignee")
                    for value, count in backlog[f"per_{by}"].items()],
        "times": [{"time": name, **report[name]} for name in ("first_response", "resolution")],
        "sla": [{"priority": priority, "first_response_late": count,
                 "resolution_late": sla["resolution_breaches"][priority]}
                for priority, count in sla["first_response_breaches"].items()],
        "breaching": list(sla["breaching"]),
        "csat": [{"assignee": who, **value} for who, value in (*csat["per_assignee"].items(), ("all", csat["overall"]))],
    }


def tickets_grouped_tables(report: Mapping[str, Any]) -> Tables:
    """`groups` (one row per value of `by`: `key.<by>`, then `ticket_figures`), `funnel` (each group's steps)."""
    groups = report["groups"]
    return {"groups": [{"key": g["key"], **ticket_figures(g)} for g in groups],
            "funnel": [{"key": g["key"], **step} for g in groups for step in g["funnel"]["steps"]]}


def ticket_figures(report: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket report's headline figures in one row; a rate with no denominator is None with its note."""
    sla, csat, funnel = report["sla"], report["csat"]["overall"], report["funnel"]
    return {"tickets": funnel["feedback"], "open": report["backlog"]["total"], "resolved": funnel["resolved"],
            "first_response_median_hours": report["first_response"]["median_hours"],
            "resolution_median_hours": report["resolution"]["median_hours"],
            "first_response_late": sum(sla["first_response_breaches"].values()),
            "resolution_late": sum(sla["resolution_breaches"].values()),
            "breaching": sla.get("breaching_total", len(sla["breaching"])),
            "ratings": csat["ratings"], "csat_average": csat["average"], "satisfied_share": csat["satisfied_share"],
            "satisfied_note": None if csat["satisfied_share"] is not None else "no ratings",
            "satisfied_customers": funnel["satisfied_customers"], "loyal": funnel["loyal"]}


def segments_grouped_tables(report: Mapping[str, Any], currency: str) -> Tables:
    """`groups`: one row per value of `by` and tier (its key column `key.<by>` first), as the plain `tiers`."""
    return {"groups": [{"key": g["key"], **row} for g in report["groups"] for row in in_currency(g["tiers"], currency)]}


def single(name: str, rows: Iterable[Mapping[str, Any]]) -> Tables:
    """A report of one table."""
    return {name: list(rows)}


TableMaker = Callable[[], Tables]


def variants_tables(report: Mapping[str, Any]) -> Tables:
    """`variants` (one row per variant: its definition, funnel counts, rate at the compared step, revenue in
    `currency` and per currency, stopped), `comparisons` (each variant against the baseline), `unconverted`."""
    currency = report.get("currency")
    return {"variants": [{"step": report["step"], **row, "currency": currency} for row in report["variants"]],
            "comparisons": [{"step": report["step"], **row} for row in report["comparisons"]],
            "unconverted": unconverted_rows(_summed(row["unconverted"] for row in report["variants"]))}


def _summed(sums: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in sums:
        for currency, cents in one.items():
            total[currency] = total.get(currency, 0) + cents
    return total


def forecast_tables(report: Mapping[str, Any]) -> Tables:
    """`periods` (one row per period and group: every figure in cents of `currency`, as of the report's instant)
    and `unconverted` (per currency, the deal amounts and targets without a rate then)."""
    currency = report.get("currency")
    return {"periods": [{**row, "currency": currency} for row in report["rows"]],
            "unconverted": unconverted_rows(report.get("unconverted", {}))}


def outlook_tables(report: Mapping[str, Any]) -> Tables:
    """The history-based forecast or its backtest: `periods` (one row per method and period: forecast, band,
    and in a backtest the actual and the error), `errors` (one row per method: why none, or its basis and, in a
    backtest, MAE, MAPE, bias and band coverage), `history` (won per past period, what the models fit),
    `actuals` (backtest) and `unconverted`. Money in cents of `currency`."""
    currency = report.get("currency")
    periods = [{"method": m["method"], **row, "currency": currency} for m in report["methods"] for row in m["periods"]]
    errors = [{"method": m["method"], "available": m["available"], "reason": m["reason"], "basis": m["basis"],
               **(m.get("errors") or {}), "currency": currency} for m in report["methods"]]
    tables = {"periods": periods, "errors": errors, "history": [{**row, "currency": currency}
                                                                for row in report["history"]]}
    if "actuals" in report:
        tables["actuals"] = [{**row, "currency": currency} for row in report["actuals"]]
    tables["unconverted"] = unconverted_rows(report.get("unconverted", {}))
    return tables


_INSPECTION_ITEM = ("deal", "customer", "pipeline", "owner", "stage", "status", "amount_cents", "currency",
                    "deal_id", "customer_id")


def _item_cells(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in _INSPECTION_ITEM}


def slippage_tables(report: Mapping[str, Any]) -> Tables:
    """`deals` (one row per deal whose close date moved in the window: net old → new, direction, the last
    change's actor and reason) and `changes` (one row per move)."""
    deals = [{**_item_cells(d), **{k: d[k] for k in ("old_close", "new_close", "old_period", "new_period",
                                                      "direction", "periods_moved")},
              "changes": len(d["changes"]), "actor": d["changes"][-1]["actor"], "reason": d["changes"][-1]["reason"]}
             for d in report["deals"]]
    changes = [{"deal": d["deal"], "customer": d["customer"], **change, "deal_id": d["deal_id"]}
               for d in report["deals"] for change in d["changes"]]
    return {"deals": deals, "changes": changes}


def changes_tables(report: Mapping[str, Any]) -> Tables:
    """`amounts` (one row per deal: amount at the window's start and end) and `stages` (one row per move)."""
    amounts = [{**_item_cells(d), **{k: d[k] for k in ("old_amount_cents", "new_amount_cents", "delta_cents")},
                "changes": len(d["changes"])} for d in report["amounts"]]
    stages = [{"deal": d["deal"], "customer": d["customer"], "pipeline": d["pipeline"], "owner": d["owner"], **move,
               "deal_id": d["deal_id"]} for d in report["stages"] for move in d["moves"]]
    return {"amounts": amounts, "stages": stages}


def inactive_tables(report: Mapping[str, Any]) -> Tables:
    """`deals`: the open deals without activity for the report's days, longest first."""
    return {"deals": [{**_item_cells(d), **{k: d[k] for k in ("expected_close", "last_activity_at", "last_activity",
                                                               "days_inactive")}} for d in report["deals"]]}


def winloss_tables(report: Mapping[str, Any]) -> Tables:
    """`groups` (all decided deals first as group "(all)", then one row per group; values in cents of
    `currency`), `reasons` and `competitors` (per group too), `deals`, `unconverted`."""
    currency = report.get("currency")
    groups = [{"group": "(all)", **report["totals"]}, *report["groups"]]

    def counted(field: str) -> Rows:
        return [{"group": group["group"], **row} for group in groups for row in group[field]]
    return {"groups": [{k: v for k, v in group.items() if k not in ("reasons", "competitors")} | {"currency": currency}
                       for group in groups],
            "reasons": counted("reasons"), "competitors": counted("competitors"),
            "deals": [{**d, "currency_of_value": currency} for d in report["deals"]],
            "unconverted": unconverted_rows(report.get("unconverted", {}))}


def attribution_tables(report: Mapping[str, Any]) -> Tables:
    """`credits` (one row per campaign, channel or campaign and variant: cents credited under the report's model,
    in `currency`, and the won deals that credited it) and `unconverted` (won deals without a rate, per currency)."""
    extra = {"model": report.get("model"), "currency": report.get("currency")}
    return {"credits": [{**row, **extra} for row in report["rows"]],
            "unconverted": unconverted_rows(report.get("unconverted", {}))}


def cohort_tables(report: Mapping[str, Any]) -> Tables:
    """`cohorts` (one row per channel and month or quarter of registration: customers, cost, CAC, won value,
    CLV, in `currency`) and `unconverted` (costs and won deals without a rate, per currency)."""
    currency = report.get("currency")
    return {"cohorts": [{**row, "currency": currency} for row in report["cohorts"]],
            "unconverted": unconverted_rows(report.get("unconverted", {}))}
