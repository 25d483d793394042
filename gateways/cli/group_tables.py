"""Tables of the grouped funnel (one row per group) and of the periods view (one row per month or quarter)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from rich.table import Table

from gateways.cli.render import _days, _money, _percent, shown
from domain.periods import UTC
from projections.funnel.dimensions import GroupedReport, PeriodRow

NO_VALUE = "(none)"  # the group of items without the dimension (no such property, a lead not yet assigned)


def grouped_table(grouped: GroupedReport, zone: tzinfo | None = None) -> Table:
    """Per group: items per open stage, open, won, won value (converted), lost, win rate (or why none),
    average cycle, bottleneck, stuck items (all of them: `--json`/`--csv --table stuck` lists them)."""
    table = Table(title=f"Funnel by {', '.join(grouped.by)} — {grouped.pipeline} as of {shown(grouped.as_of, zone)}",
                  title_justify="left")
    stages = [row.stage for row in grouped.groups[0].report.rows] if grouped.groups else []
    for column in (*grouped.by, *stages, "Open", "Won", "Won value", "Lost", "Win rate", "Avg cycle d", "Bottleneck",
                   "Stuck"):
        table.add_column(column, justify="left" if column in grouped.by else "right", no_wrap=column in grouped.by)
    for group in grouped.groups:
        report = group.report
        table.add_row(*(NO_VALUE if v in (None, "") else str(v) for v in group.key.values()),
                      *(str(row.items) for row in report.rows), str(report.open_items), str(report.won),
                      _money(report.won_value_cents), str(report.lost), _percent(report.win_rate, report.win_rate_note),
                      _days(report.average_cycle_days), report.bottleneck or "–", str(report.stuck_total))
    table.caption = f"{len(grouped.groups)} groups; counts are items in each stage at the instant"
    table.caption_justify = "left"
    return table


def periods_table(pipeline: str, groups: dict[tuple[Any, ...], list[PeriodRow]], by: Sequence[str] = (),
                  zone: tzinfo = UTC) -> Table:
    """Per group (none without --by) and period of `zone`'s calendar: won, lost, won value, win rate, average
    cycle."""
    table = Table(title=f"Decided per period — {pipeline} (periods of {zone})", title_justify="left")
    for column in (*by, "Period", "Won", "Lost", "Won value", "Win rate", "Avg cycle d"):
        table.add_column(column, justify="left" if column in (*by, "Period") else "right", no_wrap=column in by)
    for key, rows in groups.items():
        for row in rows:
            table.add_row(*(NO_VALUE if v in (None, "") else str(v) for v in key), row.period, str(row.won),
                          str(row.lost), _money(row.won_value_cents), _percent(row.win_rate, row.win_rate_note),
                          _days(row.average_cycle_days))
    return table
