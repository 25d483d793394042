"""Rich renderings of funnels and audit trails for the terminal."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table

from domain.deal import Deal
from domain.pipeline import Pipeline
from projections.funnel import FunnelReport
from services.audit import AuditEntry


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _when(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M")


def funnel_table(report: FunnelReport, title: str) -> Table:
    table = Table(title=f"{title} — {report.pipeline} as of {_when(report.as_of)} UTC", title_justify="left")
    table.add_column("Stage")
    table.add_column("In stage", justify="right")
    table.add_column("Reached", justify="right")
    table.add_column("→ next", justify="right")
    table.add_column("Median days", justify="right")
    for row in report.rows:
        table.add_row(row.label, str(row.in_stage), str(row.reached), _percent(row.conversion_to_next),
                      _days(row.median_days))
    table.caption = (f"open {report.open_deals} · won {report.won} · lost {report.lost} · "
                     f"win rate {_percent(report.win_rate)}")
    return table


def audit_table(deal: Deal, pipeline: Pipeline, entries: list[AuditEntry]) -> Table:
    def label(stage: str | None) -> str:
        return "" if stage is None else pipeline.label(stage)

    table = Table(
        title=(f"Deal {deal.id} — {deal.title}\n{deal.status} · {label(deal.stage)} · "
               f"{deal.amount} {deal.currency} · owner {deal.owner}"),
        title_justify="left",
    )
    for column in ("#", "When (business)", "Recorded", "Who", "Event", "From → to", "Why / detail"):
        table.add_column(column)
    for e in entries:
        move = f"{label(e.from_stage)} → {label(e.to_stage)}" if e.from_stage else label(e.to_stage)
        table.add_row(str(e.version), _when(e.occurred_at), _when(e.recorded_at), e.actor, e.event, move, e.detail)
    return table
