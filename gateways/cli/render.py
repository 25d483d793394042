"""Rich renderings of funnels and audit trails for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from uuid import UUID

from rich.table import Table

from domain.deal import Deal
from domain.pipeline import Pipeline
from projections.funnel import FlowRow, FunnelReport
from services.deal_audit import AuditEntry
from services.settings import time_zone_from_environment


def _percent(value: float | None, note: str | None = None) -> str:
    """A rate; a missing one says why (short: "n/a" and the reason's first clause)."""
    if value is None:
        return f"n/a ({note.split(':')[0]})" if note else "–"
    return f"{value:.1%}"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _money(cents: int) -> str:
    return f"{cents / 100:,.0f}"


def money_note(currency: str, unconverted: dict[str, int]) -> str:
    """Which currency a report's amounts are in, and what it could not convert (no rate at its instant)."""
    note = f"Amounts in {currency}, converted at the rates in force at the report's instant."
    if unconverted:
        note += (" Not converted, for want of a rate (`crm rates import`): "
                 + ", ".join(f"{c} {cents / 100:,.2f}" for c, cents in sorted(unconverted.items())) + ".")
    return note


def when(instant: datetime, zone: tzinfo | None = None) -> str:
    """An instant as a table's cell shows it: the wall time in `zone` (default the installation's,
    CRM_TIME_ZONE), whose name the title or header gives."""
    return f"{instant.astimezone(zone or time_zone_from_environment()):%Y-%m-%d %H:%M}"


def shown(instant: datetime, zone: tzinfo | None = None) -> str:
    """An instant with its zone, as a title shows it: `2026-04-01 00:30 Asia/Shanghai`, `2026-03-31 16:30 UTC`."""
    zone = zone or time_zone_from_environment()
    return f"{when(instant, zone)} {zone}"


def funnel_table(report: FunnelReport, title: str) -> Table:
    table = Table(title=f"{title} — {report.pipeline} as of {shown(report.as_of)}", title_justify="left")
    for column in ("Stage", "In stage", "Value", "Reached", "Advanced", "Lost", "Still open", "→ next",
                   "Drop-off", "Median days", "P90 days"):
        table.add_column(column, justify="left" if column == "Stage" else "right")
    for row in report.rows:
        table.add_row(row.label, str(row.items), _money(row.value_cents), str(row.reached), str(row.advanced),
                      str(row.lost), str(row.still_open), _percent(row.conversion_to_next, row.conversion_note),
                      _percent(row.drop_off), _days(row.median_days), _days(row.p90_days))
    table.caption = (f"open {report.open_items} · won {report.won} ({_money(report.won_value_cents)}) · "
                     f"lost {report.lost} · win rate {_percent(report.win_rate, report.win_rate_note)} · "
                     f"avg cycle {_days(report.average_cycle_days)} d · bottleneck {report.bottleneck or '–'} · "
                     f"stuck {report.stuck_total}\n→ next = advanced ÷ (advanced + lost): items still open "
                     "are not counted as lost")
    table.caption_justify = "left"
    return table


def stuck_table(report: FunnelReport, external_ids: Mapping[UUID, str] | None = None) -> Table:
    """The stuck items the report lists (`FunnelReport.stuck_limited`), out of all of them: each amount in its
    own currency, as recorded (not the report's: `money_note`'s "Amounts in CNY" is not about them), and
    the item's id at its source (`external_ids`) when it has one, else its UUID."""
    shown = len(report.stuck)
    table = Table(title=f"Longest-stuck deals ({shown} of {report.stuck_total} shown; --stuck-limit for more)",
                  title_justify="left")
    for column in ("Deal", "Stage", "Owner", "Amount (its currency)", "Days in stage"):
        table.add_column(column, justify="right" if column in ("Amount (its currency)", "Days in stage") else "left")
    known = external_ids or {}
    for stuck in report.stuck:
        table.add_row(known.get(stuck.item_id) or str(stuck.item_id), stuck.stage, stuck.owner,
                      f"{stuck.currency} {_money(stuck.amount_cents)}".strip(), _days(stuck.days_in_stage))
    return table


def flow_table(rows: list[FlowRow], title: str) -> Table:
    table = Table("Stage", "Entered", "Advanced", "Lost", title=title, title_justify="left")
    for row in rows:
        table.add_row(row.stage, str(row.entered), str(row.advanced), str(row.lost))
    return table


def compare_table(first: FunnelReport, second: FunnelReport) -> Table:
    table = Table("Stage", f"Deals {shown(first.as_of)}", f"Deals {shown(second.as_of)}", "Δ deals",
                  "→ next then", "→ next now", title="Funnel comparison", title_justify="left")
    for a, b in zip(first.rows, second.rows):
        table.add_row(a.label, str(a.items), str(b.items), f"{b.items - a.items:+d}",
                      _percent(a.conversion_to_next, a.conversion_note),
                      _percent(b.conversion_to_next, b.conversion_note))
    table.add_row("won", str(first.won), str(second.won), f"{second.won - first.won:+d}", "", "")
    table.add_row("lost", str(first.lost), str(second.lost), f"{second.lost - first.lost:+d}", "", "")
    return table


def weekly_table(reports: list[FunnelReport]) -> Table:
    table = Table("Week of", *(row.stage for row in reports[0].rows), "won", "lost",
                  title="Open deals per stage, week by week", title_justify="left")
    for report in reports:
        table.add_row(when(report.as_of)[:10], *(str(row.items) for row in report.rows),
                      str(report.won), str(report.lost))
    return table


def audit_table(deal: Deal, pipeline: Pipeline, entries: list[AuditEntry]) -> Table:
    def label(stage: str | None) -> str:
        return "" if stage is None else pipeline.label(stage)

    known_as = f" ({deal.external_id})" if deal.external_id else ""  # its id in the system it came from
    table = Table(
        title=(f"Deal {deal.id}{known_as} — {deal.title}\n{deal.status} · {label(deal.stage)} · "
               f"{deal.amount} {deal.currency} · owner {deal.owner}"),
        title_justify="left",
    )
    zone = time_zone_from_environment()
    for column in ("#", f"When (business, {zone})", "Recorded", "Who", "Event", "From → to", "Why / detail"):
        table.add_column(column)
    for e in entries:
        move = f"{label(e.from_stage)} → {label(e.to_stage)}" if e.from_stage else label(e.to_stage)
        table.add_row(str(e.version), when(e.occurred_at, zone), when(e.recorded_at, zone), e.actor, e.event, move,
                      e.detail)
    return table
