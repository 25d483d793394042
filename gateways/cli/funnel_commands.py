"""`crm funnel`: the funnel as of an instant, between two instants, compared, week by week, grouped by a
dimension or cohort, or win rate and cycle per month or quarter."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any

import typer

from domain.exchange_rates import Conversion, add_sums
from domain.funnel_rules import STUCK_DAYS
from domain.segmentation import TIERS
from gateways.cli.common import (RECORD_ID_HELP, console, crm_application, fail, note_freshness, parse_instant,
                                 read_store, record_id, report_zone)
from gateways.cli.group_tables import grouped_table, periods_table
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, LIST_LIMIT, Output, TableName
from gateways.cli.property_commands import property_filters
from gateways.cli.render import compare_table, flow_table, funnel_table, money_note, stuck_table, weekly_table
from gateways.report_tables import (funnel_compare_tables, funnel_grouped_tables, funnel_periods_tables,
                                    funnel_tables, funnel_weeks_tables, single, with_external_ids)
from projections.external_ids import ExternalIdQueries
from projections.funnel import FunnelFilters, FunnelQueries
from projections.funnel.dimensions import GRAINS
from projections.rates import RateQueries
from services.projection_runtime.funnel_as_of import funnel_queries, funnel_read_models, replay_funnel, stages_of


def funnel(
    pipeline: Annotated[str, typer.Option(help="Pipeline key: sales, marketing, service, …")] = "sales",
    as_of: AsOf = "now",
    between: Annotated[tuple[str, str] | None, typer.Option(help="Flow between two instants: T1 T2.")] = None,
    compare: Annotated[tuple[str, str] | None, typer.Option(help="Compare the funnel at T1 and T2.")] = None,
    weekly: Annotated[tuple[str, str] | None, typer.Option(help="Funnel at the start of each week in [T1, T2).")] = None,
    owner: Annotated[str | None, typer.Option(help="Only deals this person owned at the instant.")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    industry: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[str | None, typer.Option(help="The customer's acquisition channel.")] = None,
    campaign: Annotated[str | None, typer.Option(help=f"The campaign the deal came from: {RECORD_ID_HELP}.")] = None,
    segment: Annotated[str | None, typer.Option(help=f"The customer's value tier then: {', '.join(TIERS)}.")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", help="Only items with this property then, "
                                                   "name=value (the item's own, else its customer's); repeatable.")] = None,
    by: Annotated[list[str] | None, typer.Option(help="One funnel per value of owner, region, industry, channel, "
                                                 "campaign or a property (as of --as-of); repeatable.")] = None,
    cohort: Annotated[str | None, typer.Option(help="One funnel per creation day, week, month, quarter or year "
                                               "(of --tz).")] = None,
    periods: Annotated[str | None, typer.Option(help="Win rate and cycle of the items decided in each day, week, "
                                                "month, quarter or year (of --tz) from --since to --as-of (per "
                                                "--by value).")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="The time zone of periods, cohorts, weeks and of instants "
                                           "without an offset (an IANA name: Asia/Shanghai, UTC); default the "
                                           "installation's, CRM_TIME_ZONE.")] = None,
    since: Annotated[str | None, typer.Option(help="Start of --periods (default: the first decision).")] = None,
    stuck_days: Annotated[float, typer.Option(min=0, help="A deal is stuck after this many days in a stage.")] = STUCK_DAYS,
    replay: Annotated[bool, typer.Option("--replay", help="Fold the log from scratch instead of the read model.")] = False,
    stuck_limit: Annotated[int, typer.Option(min=0, help="Stuck deals to list (their total is always given).")] = LIST_LIMIT,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    table: TableName = None,
    bom: Bom = False,
) -> None:
    """The funnel of a pipeline as of an instant (default now), with conversion, dwell times and stuck deals."""
    if segment is not None and segment not in TIERS:
        raise typer.BadParameter(f"unknown segment {segment!r}; expected one of: {', '.join(TIERS)}",
                                 param_hint="--segment")
    for grain in (cohort, periods):
        if grain is not None and grain not in GRAINS:
            raise typer.BadParameter(f"unknown period {grain!r}; expected one of: {', '.join(GRAINS)}")
    properties = property_filters(prop or [])
    zone = report_zone(tz)
    if (by or cohort or periods) and (replay or between or compare or weekly):
        raise fail("--by, --cohort and --periods go with --as-of only (not --replay, --between, --compare, --weekly)")
    if periods and cohort:
        raise fail("--periods are periods of decisions; --cohort groups by creation: use one or the other")
    output = Output(as_json, as_csv, table, bom)
    with crm_application() as crm, read_store(crm) as store:
        filters = FunnelFilters(owner, region, industry, channel,
                                None if campaign is None else record_id(crm, "campaign", campaign), segment,
                                properties)
        stages = stages_of(crm, pipeline)
        note_freshness(crm, store, funnel_read_models(filters, from_log=replay and not between))
        queries, rates = funnel_queries(store), RateQueries(store)

        def instant_of(text: str) -> datetime:
            return parse_instant(text, zone)

        def money_at(instant: datetime) -> Conversion:
            return rates.conversion(crm.reporting_currency, instant)

        def report_at(instant: datetime) -> Any:
            if replay:
                return replay_funnel(crm, pipeline, instant, filters, stuck_days).stuck_limited(stuck_limit)
            return queries.report(pipeline, stages, instant, filters, stuck_days, money_at(instant)
                                  ).stuck_limited(stuck_limit)

        if periods:
            end = instant_of(as_of)
            start = instant_of(since) if since else queries.first_decision(pipeline) or end
            _show_periods(queries, pipeline, periods, start, end, filters, by or [], money_at(end), output, zone)
        elif by or cohort:
            instant = instant_of(as_of)
            grouped = queries.grouped(pipeline, stages, instant, by or [], filters, stuck_days, cohort,
                                      money_at(instant), zone).stuck_limited(stuck_limit)
            data = {**grouped.to_dict(), "as_of": instant.astimezone(zone).isoformat(), "time_zone": str(zone)}
            output.show(data, lambda: funnel_grouped_tables(data),
                        lambda: (console.print(grouped_table(grouped, zone)),
                                 console.print(money_note(grouped.currency, grouped.unconverted))))
        elif between:
            start, end = map(instant_of, between)
            rows = queries.flow(pipeline, stages, start, end, filters)
            output.show({"pipeline": pipeline, "from": start.isoformat(), "to": end.isoformat(),
                         "flow": [vars(r) for r in rows]}, lambda: single("flow", map(vars, rows)),
                        lambda: console.print(flow_table(rows, f"Flow in {pipeline} from {start} to {end}")))
        elif compare:
            first, second = (report_at(instant_of(t)) for t in compare)
            output.show({"first": first.to_dict(), "second": second.to_dict()},
                        lambda: funnel_compare_tables(first.to_dict(), second.to_dict()),
                        lambda: console.print(compare_table(first, second)))
        elif weekly:
            start, end = map(instant_of, weekly)
            if end <= start:
                raise typer.BadParameter("the second instant must come after the first", param_hint="--weekly")
            reports = [report_at(instant) for instant in _weeks(start.astimezone(zone), end)]
            weeks = [r.to_dict() for r in reports]
            output.show({"weeks": weeks}, lambda: funnel_weeks_tables(weeks), lambda: console.print(weekly_table(reports)))
        else:
            report = report_at(instant_of(as_of))
            known = ExternalIdQueries(store).external_ids(item.item_id for item in report.stuck)  # their source ids
            data = with_external_ids(report.to_dict(), known)
            output.show(data, lambda: funnel_tables(data),
                        lambda: (console.print(funnel_table(report, "Funnel")), console.print(stuck_table(report, known)),
                                 console.print(money_note(report.currency, report.unconverted))))


def _show_periods(queries: FunnelQueries, pipeline: str, grain: str, start: datetime, end: datetime,
                  filters: FunnelFilters, by: list[str], money: Conversion, output: Output, zone: tzinfo) -> None:
    """`--periods` (per `--by` value) of `zone`'s calendar: won values converted at the rates in force at the
    end, `--as-of`."""
    groups = (queries.periods_by(pipeline, grain, start, end, filters, by, money, zone) if by
              else {(): queries.periods(pipeline, grain, start, end, filters, money, zone)})
    head = {"pipeline": pipeline, "grain": grain, "from": start.astimezone(zone).isoformat(),
            "to": end.astimezone(zone).isoformat(), "time_zone": str(zone), **money.to_dict()}
    data = ({**head, "by": by, "groups": [{"key": dict(zip(by, key)), "periods": [_period(r) for r in rows]}
                                          for key, rows in groups.items()]} if by
            else {**head, "periods": [_period(r) for r in groups[()]]})
    unconverted: dict[str, int] = {}
    for row in (row for rows in groups.values() for row in rows):
        add_sums(unconverted, row.unconverted)
    output.show(data, lambda: funnel_periods_tables(data),
                lambda: (console.print(periods_table(pipeline, groups, by, zone)),
                         console.print(money_note(money.reporting, dict(sorted(unconverted.items()))))))


def _period(row: Any) -> dict[str, Any]:
    return {**vars(row), "start": row.start.isoformat(), "end": row.end.isoformat()}


def _weeks(start: datetime, end: datetime) -> list[datetime]:
    """Each week's same wall time from `start` on, in `start`'s zone (a week across a DST change is 167 or
    169 hours long)."""
    instants = []
    while start < end:
        instants.append(start)
        start += timedelta(weeks=1)
    return instants
