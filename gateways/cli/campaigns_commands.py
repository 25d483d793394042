"""`crm campaigns`: campaigns and channels as of an instant — cost, responses, deals, ROI, CAC,
attribution of won revenue and customer lifetime value."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from domain.errors import DomainError
from domain.vocabulary import ACQUISITION_CHANNEL, require_recorded
from gateways.cli.common import console, crm_application, note_freshness, parse_instant, read_store
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output, TableName, percent
from gateways.cli.property_commands import property_filters
from gateways.cli.render import money_note, shown
from gateways.report_tables import campaigns_grouped_tables, campaigns_tables
from projections.campaigns import CampaignGroups, CampaignQueries, CampaignsReport, Totals
from projections.rates import RateQueries

TOTAL_COLUMNS = ("Cost", "Responses", "Leads", "Qualified", "Deals", "Won", "Lost", "Revenue", "ROI", "CAC")


def campaigns(
    as_of: AsOf = "now",
    channel: Annotated[str | None, typer.Option(help="Only one acquisition channel (see `crm vocabulary show "
                                                     "acquisition_channel`), or unknown.")] = None,
    by: Annotated[str | None, typer.Option(help="One report per value of region, industry (the lead's as captured) "
                                                "or a lead property as of the instant (`unknown`: none); a deal "
                                                "follows its lead, else its customer. Cost, ROI and CAC stay "
                                                "with the plain report (costs are per campaign).")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", help=(
        "name=value: only the leads (as of the instant), their deals and responses with this property; "
        "repeatable. Cost, ROI and CAC are then null (costs are per campaign)."))] = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    table: TableName = None,
    bom: Bom = False,
) -> None:
    """Campaigns and channels as of an instant (default now): ROI, CAC, attribution and lifetime value.
    CSV tables: campaigns (default), channels, attribution, clv_by_channel, clv_by_first_touch, unconverted;
    with --by: groups (default), channels."""
    output = Output(as_json, as_csv, table, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        if channel is not None:
            try:
                require_recorded(ACQUISITION_CHANNEL, crm.vocabulary(ACQUISITION_CHANNEL), channel)
            except DomainError as error:
                raise typer.BadParameter(str(error), param_hint="--channel") from None
        where = property_filters(prop or [])
        if by is not None and where:
            raise typer.BadParameter("--by gives every value; leave out --property", param_hint="--by")
        if (by is not None or where) and channel is not None:
            raise typer.BadParameter("--by gives every channel; leave out --channel", param_hint="--by")
        note_freshness(crm, store, ["campaigns", "rates"])
        money = RateQueries(store).conversion(crm.reporting_currency, instant)
        if by is not None:
            grouped = CampaignQueries(store).grouped(instant, by, money)
            groups = grouped.to_dict()
            output.show(groups, lambda: campaigns_grouped_tables(groups), lambda: console.print(group_table(grouped)))
            return
        if where:
            filtered = CampaignQueries(store).filtered(instant, where, money)
            output.show(filtered, lambda: campaigns_tables(filtered), lambda: console.print(_filtered_table(filtered)))
            return
        report = CampaignQueries(store).report(instant, channel, money)
    data = report.to_dict()
    output.show(data, lambda: campaigns_tables(data), lambda: _print(report))


def group_table(grouped: CampaignGroups) -> Table:
    """Each value's campaigns: the figures that add up across values (cost, ROI, CAC: see the caption)."""
    table = _table(f"Campaigns by {grouped.by} as of {shown(grouped.as_of)}", grouped.by, "Campaign", "Leads",
                   "Qualified", "Deals", "Won", "Lost", "Revenue", left=2)
    for group in grouped.groups:
        for row in group["campaigns"]:
            t = row["totals"]
            table.add_row(group["key"][grouped.by], row["name"], *(str(t[name]) for name in (
                "leads", "qualified", "deals", "won", "lost")), _money(t["won_revenue_cents"]))
    table.caption = f"Revenue in {grouped.groups[0]['currency'] if grouped.groups else ''}; " \
                    f"{grouped.to_dict()['cost_note']}: cost, ROI and CAC are in the plain report"
    table.caption_justify = "left"
    return table


def _filtered_table(report: dict) -> Table:
    table = _table(f"Campaigns with {report['properties']} as of {report['as_of']}", "Campaign", "Leads", "Qualified",
                   "Deals", "Won", "Lost", "Revenue")
    for row in report["campaigns"]:
        t = row["totals"]
        table.add_row(row["name"], *(str(t[n]) for n in ("leads", "qualified", "deals", "won", "lost")),
                      _money(t["won_revenue_cents"]))
    table.caption = f"Revenue in {report['currency']}; cost, ROI and CAC are in the plain report (costs are per campaign)"
    return table


def _print(report: CampaignsReport) -> None:
    for table in (campaign_table(report), channel_table(report), attribution_table(report), value_table(report)):
        console.print(table)
    console.print(money_note(report.currency, report.unconverted))


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.0f}"


def _totals(t: Totals) -> list[str]:
    return [_money(t.cost_cents), str(t.response_count), str(t.leads), str(t.qualified), str(t.deals), str(t.won),
            str(t.lost), _money(t.won_revenue_cents), percent(t.roi, "no cost yet"), _money(t.cac_cents)]


def _table(title: str, *columns: str, left: int = 1) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right")
    return table


def campaign_table(report: CampaignsReport) -> Table:
    table = _table(f"Campaigns as of {shown(report.as_of)}", "Campaign", "Channel", "Status", "Planned",
                   "Budget", *TOTAL_COLUMNS, left=4)
    for row in report.campaigns:
        table.add_row(row.name, row.channel, row.status, row.planned_at.strftime("%Y-%m-%d"),
                      _money(row.budget_cents), *_totals(row.totals))
    return table


def channel_table(report: CampaignsReport) -> Table:
    table = _table("Channels", "Channel", "Campaigns", *TOTAL_COLUMNS, "Lead→qualified", "Qualified→deal",
                   "Deal→won")
    for row in report.channels:
        table.add_row(row.channel, str(row.campaigns), *_totals(row.totals),
                      *(percent(rate, note and note.split(":")[0]) for rate, note in (
                          (row.lead_to_qualified, row.lead_to_qualified_note),
                          (row.qualified_to_deal, row.qualified_to_deal_note), (row.deal_to_won, row.deal_to_won_note))))
    table.caption = ("Rates count decided items only — lead→qualified = qualified ÷ (qualified + disqualified "
                     "new leads), qualified→deal = converted ÷ (converted + disqualified qualified leads), "
                     "deal→won = won ÷ (won + lost); n/a when nothing of the kind was lost")
    table.caption_justify = "left"
    return table


def attribution_table(report: CampaignsReport) -> Table:
    """Won deals and revenue per campaign by first and last touch, with its first-touch customers' CLV."""
    table = _table("Attribution of won revenue", "Campaign", "Planned", "First-touch deals", "First-touch revenue",
                   "Last-touch deals", "Last-touch revenue", "First-touch customers", "Average CLV", left=2)
    planned = {row.campaign_id: row.planned_at.strftime("%Y-%m-%d") for row in report.campaigns}
    values = {row.campaign_id: row for row in report.clv_by_first_touch}
    for row in report.attribution:
        value = values[row.campaign_id]
        table.add_row(row.name or "(no campaign touch)", planned.get(row.campaign_id, ""),
                      str(row.first_touch_deals), _money(row.first_touch_revenue_cents), str(row.last_touch_deals),
                      _money(row.last_touch_revenue_cents), str(value.customers), _money(value.average_cents))
    return table


def value_table(report: CampaignsReport) -> Table:
    table = _table("Customer lifetime value by channel", "Channel", "Customers", "Total", "Average CLV")
    for row in report.clv_by_channel:
        table.add_row(row.channel, str(row.customers), _money(row.total_cents), _money(row.average_cents))
    return table
