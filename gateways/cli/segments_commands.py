"""`crm segments`: customers' value tiers (RFM) as of an instant, a tier's members, a customer's history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from domain.segmentation import MONETARY_CURRENCY, TIERS
from gateways.cli.common import (RECORD_ID_HELP, console, crm_application, fail, note_freshness, parse_instant,
                                 read_store, record_id, run_unattended)
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output
from gateways.cli.property_commands import property_filters
from gateways.cli.render import shown, when
from gateways.report_tables import in_currency, segments_grouped_tables, single
from projections.segments import CustomerSegment, Membership, SegmentQueries, TierCount
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

segments_app = typer.Typer(help="Customer value segments (RFM scores and tiers) as of an instant.",
                           invoke_without_command=True)


@segments_app.callback()
def segments(
    ctx: typer.Context,
    as_of: AsOf = "now",
    tier: Annotated[str | None, typer.Option(help=f"List this tier's members: {', '.join(TIERS)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Members to list.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Members to skip.")] = 0,
    by: Annotated[str | None, typer.Option(help="Tier counts per value of region, industry, channel or a customer "
                                                "property (as of the instant; unknown where none).")] = None,
    region: Annotated[str | None, typer.Option(help="Only customers of this region.")] = None,
    industry: Annotated[str | None, typer.Option(help="Only customers of this industry.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only customers of this acquisition channel.")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", help="Only customers with this property then, "
                                                   "name=value; repeatable.")] = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    bom: Bom = False,
) -> None:
    """Customers per tier with average R, F and M as of an instant (default now), or one tier's members
    (a page of them, with their total)."""
    if ctx.invoked_subcommand is not None:
        return
    output = Output(as_json, as_csv, None, bom)
    if tier is not None and tier not in TIERS:
        raise typer.BadParameter(f"unknown tier {tier!r}; expected one of: {', '.join(TIERS)}", param_hint="--tier")
    where = [(name, value) for name, value in (("region", region), ("industry", industry), ("channel", channel))
             if value is not None] + list(property_filters(prop or []))
    if tier is not None and (by or where):
        raise fail("--by and the filters go with the tier counts, not with --tier")
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        queries = _queries(crm, store)
        if by is not None:
            grouped = _grouped(queries, instant, by, where)
            output.show(grouped, lambda: segments_grouped_tables(grouped, MONETARY_CURRENCY),
                        lambda: console.print(_grouped_table(grouped, instant)))
        elif tier is None:
            counts = queries.tier_counts(instant, where)
            output.show({"as_of": instant.isoformat(), "tiers": [vars(c) for c in counts]},
                        lambda: single("tiers", in_currency(map(vars, counts), MONETARY_CURRENCY)), lambda: console.print(_counts_table(counts, instant)))
        else:
            members = queries.members(tier, instant, limit, offset)
            total = next(c.customers for c in queries.tier_counts(instant) if c.tier == tier)
            listed = [m.to_dict() for m in members]
            output.show({"as_of": instant.isoformat(), "tier": tier, "total": total, "limit": limit, "offset": offset,
                         "members": listed}, lambda: single("members", in_currency(listed, MONETARY_CURRENCY, "monetary_cents")),
                        lambda: console.print(_members_table(members, tier, instant, total, offset)))


@segments_app.command("history")
def history(
    customer: Annotated[str, typer.Argument(help=f"The customer: {RECORD_ID_HELP}.")],
    as_of: AsOf = "now",
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    bom: Bom = False,
) -> None:
    """When the customer entered and left each tier, up to an instant (default now)."""
    output = Output(as_json, as_csv, None, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        customer_id = record_id(crm, "customer", customer)
        stays = _queries(crm, store).history(customer_id, instant)
        if not stays:
            raise fail(f"customer {customer_id} was in no segment by {instant.isoformat()}")
        listed = [s.to_dict() for s in stays]
        output.show({"customer_id": str(customer_id), "as_of": instant.isoformat(), "history": listed},
                    lambda: single("history", listed), lambda: console.print(_history_table(stays, customer_id, instant)))


def _grouped(queries: SegmentQueries, instant: datetime, by: str, where: list[tuple[str, str]]) -> dict[str, Any]:
    groups = queries.grouped_tier_counts(instant, by, where)
    return {"as_of": instant.isoformat(), "by": by, "where": dict(where),
            "groups": [{"key": {by: value}, "tiers": [vars(c) for c in counts]} for value, counts in groups.items()]}


def _queries(crm: CrmApplication, store: ReadModelStore) -> SegmentQueries:
    note_freshness(crm, store, ["segments"])
    return SegmentQueries(store)


def _when(instant: datetime | None) -> str:
    return "–" if instant is None else when(instant)


def _average(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _money(value_cents: int) -> str:
    return f"{value_cents / 100:,.0f}"


def _counts_table(counts: list[TierCount], instant: datetime) -> Table:
    table = Table(title=f"Customer segments as of {shown(instant)}", title_justify="left")
    for column in ("Tier", "Customers", "Won, last 365 d (CNY)", "Avg R", "Avg F", "Avg M"):
        table.add_column(column, justify="left" if column == "Tier" else "right")
    for c in counts:
        table.add_row(c.tier, str(c.customers), _money(c.value_cents), _average(c.average_recency),
                      _average(c.average_frequency), _average(c.average_monetary))
    apart = [f"{c.tier} {currency} {cents / 100:,.2f}" for c in counts for currency, cents in c.unconverted.items()]
    if apart:
        table.caption = f"Won without a rate into CNY then (not in the figures): {', '.join(apart)}."
    return table


def _grouped_table(grouped: dict[str, Any], instant: datetime) -> Table:
    by = grouped["by"]
    table = Table(title=f"Customer segments per {by} as of {shown(instant)}", title_justify="left")
    for column in (by, "Tier", "Customers", "Won, last 365 d (CNY)", "Not converted"):
        table.add_column(column, justify="right" if column in ("Customers", "Won, last 365 d (CNY)") else "left")
    for group in grouped["groups"]:
        for c in group["tiers"]:
            apart = ", ".join(f"{currency} {cents / 100:,.2f}" for currency, cents in c["unconverted"].items())
            table.add_row(group["key"][by], c["tier"], str(c["customers"]), _money(c["value_cents"]), apart or "–")
    return table


def _members_table(members: list[CustomerSegment], tier: str, instant: datetime, total: int, offset: int) -> Table:
    listed = f"{offset + 1}–{offset + len(members)}" if members else "none"
    table = Table(title=f"{tier} customers as of {shown(instant)} — {listed} of {total}", title_justify="left")
    for column in ("Customer", "R", "F", "M", "Won, last 365 d", "Last purchase", "Open deals", "In tier since",
                   "Channel", "Pipeline"):
        table.add_column(column)
    for m in members:
        table.add_row(str(m.customer_id), str(m.recency), str(m.frequency), str(m.monetary), _money(m.monetary_cents),
                      _when(m.last_purchase_at), str(m.open_deals), _when(m.tier_since), m.preferred_channel or "–",
                      m.preferred_pipeline or "–")
    return table


def _history_table(stays: list[Membership], customer_id: UUID, instant: datetime) -> Table:
    table = Table("Tier", "Entered", "Left", title=f"Segments of customer {customer_id} up to {shown(instant)}",
                  title_justify="left")
    for stay in stays:
        table.add_row(stay.tier, _when(stay.entered_at), _when(stay.left_at) if stay.left_at else "(still there)")
    return table


@segments_app.command("run")
def run(poll: Annotated[float, typer.Option(min=0.01, help="Seconds between looks when no change fell due.")] = 0.25
        ) -> None:
    """Announce each change of a customer's value tier once, as it falls due — ageing purchases included
    (Ctrl-C stops): one process per database announces, another started beside it stands by; database outages
    are waited out (logged on stderr). `crm relay` publishes them on crm.events and crm.segments."""
    from services.segment_process import run_until_stopped

    run_unattended("crm segments run", "Announcing tier changes as they fall due; Ctrl-C to stop.", run_until_stopped,
                   poll)
