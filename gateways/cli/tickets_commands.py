"""`crm tickets`: service backlog, response and resolution times, SLA, CSAT and the service funnel; grouped
by owner, priority, the customer's region, industry, channel or a property of the customer (`--by`), and
filtered by the customer's properties (`--property`), as of the instant."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gateways.cli.common import console, crm_application, note_freshness, parse_instant, read_store
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, LIST_LIMIT, Output, TableName, percent
from gateways.cli.property_commands import property_filters
from gateways.cli.render import shown
from gateways.report_tables import capped, ticket_figures, tickets_grouped_tables, tickets_tables
from projections.tickets import BreachPage, Durations, Satisfaction, TicketQueries, TicketReport

MAX_LISTED, MAX_OFFSET = 500, 1_000_000_000  # as a page of the API (gateways/http/pagination.py)


def tickets(
    as_of: AsOf = "now",
    breaching_limit: Annotated[int, typer.Option(min=0, max=MAX_LISTED, help="Breaching tickets to list (their "
                                                            "total is always given).")] = LIST_LIMIT,
    breaching_offset: Annotated[int, typer.Option(min=0, max=MAX_OFFSET, help="Skip this many breaching tickets "
                                                  "first (unresolved oldest first, then resolved newest first).")] = 0,
    by: Annotated[str | None, typer.Option(help="One report per value of owner (the assignee then), priority, "
                                                "region, industry, channel (the customer's) or a property of "
                                                "the customer then (account_size, …; none: null).")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", help="Only tickets whose customer has this "
                                                   "property then: name=value (repeatable).")] = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    table: TableName = None,
    bom: Bom = False,
) -> None:
    """Service tickets as of an instant (default now): backlog, times, SLA breaches, CSAT, service funnel.
    CSV tables: funnel (default), backlog, times, sla, breaching, csat; with --by: groups (default), funnel."""
    output = Output(as_json, as_csv, table, bom)
    instant = parse_instant(as_of)
    properties = property_filters(prop or [])
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["tickets"])
        queries = TicketQueries(store, crm.keys.unseal_all_marks)
        if by is not None:
            grouped = queries.grouped(instant, by, properties).to_dict()
            for group in grouped["groups"]:
                _page(group, breaching_offset, breaching_limit)
            output.show(grouped, lambda: tickets_grouped_tables(grouped), lambda: _print_groups(grouped))
            return
        report = queries.report(instant, properties, BreachPage(breaching_offset, breaching_limit))
    data = report.to_dict()
    output.show(data, lambda: tickets_tables(data), lambda: _print(report, breaching_limit))


_NONE = {"owner": "(unassigned)"}  # the text for a group without a value


def _page(report: dict, offset: int, limit: int) -> dict:
    """The group's report with `limit` of its breaching tickets from the `offset`th (their total stays), as the
    plain report's page and GET /reports/tickets?by=…&offset=… (the offset was once ignored here)."""
    report["sla"]["breaching"] = capped(report["sla"]["breaching"][offset:], limit)
    return report


def _print_groups(grouped: dict) -> None:
    properties = ", ".join(f"{name}={value}" for name, value in grouped["properties"].items())
    table = Table(grouped["by"], "Tickets", "Open", "Resolved", "Response median h", "Resolution median h",
                  "Response late", "Resolution late", "Ratings", "Satisfied (4–5)", "Loyal",
                  title=f"Service tickets by {grouped['by']} as of {grouped['as_of']}"
                        + (f" ({properties})" if properties else ""), title_justify="left")
    for group in grouped["groups"]:
        row = ticket_figures(group)
        table.add_row(group["key"][grouped["by"]] or _NONE.get(grouped["by"], "(none)"), *(str(row[n]) for n in ("tickets", "open", "resolved")),
                      _number(row["first_response_median_hours"]), _number(row["resolution_median_hours"]),
                      str(row["first_response_late"]), str(row["resolution_late"]), str(row["ratings"]),
                      percent(row["satisfied_share"], row["satisfied_note"]),
                      f"{row['loyal']} of {row['satisfied_customers']}")
    console.print(table)


def _print(report: TicketReport, breaching_limit: int) -> None:
    console.print(f"Service tickets as of {shown(report.as_of)}", style="bold")
    for table in (_backlog_table(report), _times_table(report), _sla_table(report),
                  _breaches_table(report, breaching_limit), _csat_table(report), _funnel_table(report)):
        console.print(table)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _backlog_table(report: TicketReport) -> Table:
    backlog = report.backlog
    table = Table("By", "", "Tickets", title=f"Backlog: {backlog.total} being worked on", title_justify="left")
    for status, count in backlog.per_status.items():
        table.add_row("status", status, str(count))
    table.add_section()
    for priority, count in backlog.per_priority.items():
        table.add_row("priority", priority, str(count))
    table.add_section()
    for assignee, count in backlog.per_assignee.items():
        table.add_row("assignee", assignee, str(count))
    return table


def _times_table(report: TicketReport) -> Table:
    table = Table("Time", "Tickets", "Median h", "P90 h", title="Response and resolution", title_justify="left")
    for label, durations in (("first response", report.first_response), ("resolution", report.resolution)):
        table.add_row(label, *_durations(durations))
    return table


def _durations(durations: Durations) -> tuple[str, str, str]:
    return str(durations.count), _number(durations.median_hours), _number(durations.p90_hours)


def _sla_table(report: TicketReport) -> Table:
    table = Table("Priority", "First response late", "Resolution late", title="SLA breaches", title_justify="left")
    for priority, count in report.sla.first_response_breaches.items():
        table.add_row(priority, str(count), str(report.sla.resolution_breaches[priority]))
    return table


def _breaches_table(report: TicketReport, limit: int) -> Table:
    breaching, total = report.sla.breaching, report.sla.breaching_total
    table = Table("Ticket", "Priority", "Status", "Assignee", "Subject", "Response h", "Resolution h",
                  title=f"Breaching tickets ({min(limit, len(breaching))} of {total} shown; unresolved "
                        "oldest first, then newest)", title_justify="left")
    for b in breaching[:limit]:
        table.add_row(str(b.ticket_id), b.priority, b.status, b.assignee or "–", b.subject,
                      _late(b.first_response_hours, b.first_response_late),
                      _late(b.resolution_hours, b.resolution_late))
    return table


def _late(hours: float, late: bool) -> Text:
    return Text(f"{hours:.1f}", style="red" if late else "")


def _csat_table(report: TicketReport) -> Table:
    table = Table("Assignee", "Ratings", "Average", "Satisfied (4–5)", title="CSAT", title_justify="left")
    for assignee, csat in (*report.csat.per_assignee.items(), ("all", report.csat.overall)):
        table.add_row(assignee, *_satisfaction(csat))
    return table


def _satisfaction(csat: Satisfaction) -> tuple[str, str, str]:
    return str(csat.ratings), _number(csat.average), percent(csat.satisfied_share, "no ratings")


def _funnel_table(report: TicketReport) -> Table:
    table = Table("Step", "Count", "Unit", "Not yet", "Conversion", title="Service funnel", title_justify="left")
    for step in report.funnel.steps():
        table.add_row(step.step, str(step.count), step.unit, "" if step.not_yet is None else str(step.not_yet),
                      "" if step.step == "feedback" else percent(step.conversion, step.conversion_note))
    table.caption = f"loyal ÷ {report.funnel.satisfied_customers} satisfied customers"
    table.caption_justify = "left"
    return table
