"""The plain campaigns report as of an instant, from the pre-summed tallies: its cost does not grow with history.

The figures as of T are the sum of the tallies of the years before T's year, the months of T's year before
T's month, the dekads of T's month before T's dekad, its days before T's day, and the changes of T's day up
to T (steps, costs and responses): at most 25 tallies and one day of rows, whatever the length of the history
(`summed_tables` keeps them, `unit_steps` says what each key counts). Only then are the rules that need
the instant applied: campaigns planned by T (a touch of a campaign not yet planned is "no campaign"),
and money converted at the rates in force at T, one sum per currency and figure (`Conversion.convert`).
`facts_report` derives the same figures from every fact and is the reference this is held equal to.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import orjson

from domain.exchange_rates import Conversion, add_sums
from domain.marketing import cents_each
from projections.campaigns.facts_report import plans_as_of
from projections.campaigns.figures import (AttributionRow, CampaignsReport, CampaignValue, ChannelValue, Tally,
                                           as_uuid, assemble)
from projections.campaigns.rows import Plan
from projections.campaigns.summed_tables import BEFORE_DAY, DAY_MICROS, before_day
from projections.campaigns.unit_steps import Share, add, merge
from projections.ports import Store
from projections.tables import micros

_MONEY = frozenset("mABHT")  # keys with a currency: figure|currency|name
_COUNTS = {"l": "leads", "q": "qualified", "v": "converted", "d": "disqualified", "x": "qualified_disqualified",
           "n": "deals", "w": "won", "o": "lost", "f": "new_customers"}

Sums = dict[str, dict[str, dict[str, int]]]  # figure → name → currency → cents


def summed_share(store: Store, t: int) -> Share:
    """Every key of the report summed as of `t` (µs): the tallies before `t`'s day, then that day's steps,
    responses and costs up to `t`, in one statement (one round trip: a busy server's scheduling delay, not
    its work, made most of the time of six)."""
    day = t // DAY_MICROS
    today = [day * DAY_MICROS, t]
    total: Share = {}
    for deltas, cid, kind, count in store.query(
        "SELECT deltas, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT) FROM campaigns_tallies "
        f"WHERE {BEFORE_DAY} "
        "UNION ALL SELECT deltas, NULL, NULL, NULL FROM campaigns_steps WHERE at >= ? AND at <= ? "
        "UNION ALL SELECT NULL, campaign_id, kind, COUNT(*) FROM campaigns_responses "
        "WHERE occurred_at >= ? AND occurred_at <= ? GROUP BY campaign_id, kind "
        "UNION ALL SELECT NULL, campaign_id, NULL, CAST(SUM(amount_cents) AS BIGINT) FROM campaigns_costs "
        "WHERE occurred_at >= ? AND occurred_at <= ? GROUP BY campaign_id",
        [*before_day(day), *today, *today, *today],
    ):
        if deltas is not None:
            merge(total, orjson.loads(deltas))
        elif kind is not None:
            add(total, f"r|{kind}|{cid}", int(count))
        else:
            add(total, f"c|{cid}", int(count))
    return total


def _split(total: Share) -> tuple[dict[str, dict[str, int]], Sums]:
    """The summed keys as counts (figure → name → n; responses as figure "r|kind") and money sums."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    sums: Sums = defaultdict(lambda: defaultdict(dict))
    for key, value in total.items():
        figure, _, name = key.partition("|")
        if figure in _MONEY:
            rest = name
            currency, _, name = rest.partition("|")
            sums[figure][name][currency] = value
        elif figure == "r":
            kind, _, name = name.partition("|")
            counts[f"r|{kind}"][name] = value
        else:
            counts[figure][name] = value
    return counts, sums


def _tally(cid: str, plan: Plan, counts: dict[str, dict[str, int]], sums: Sums, money: Conversion) -> Tally:
    tally = Tally(**{field: counts[figure].get(cid, 0) for figure, field in _COUNTS.items()})
    for figure, by_campaign in counts.items():
        if figure.startswith("r|") and cid in by_campaign:
            kind = figure[2:]
            tally.responses[kind] = tally.responses.get(kind, 0) + by_campaign[cid]
    cost = money.convert({plan.currency: counts["c"].get(cid, 0)})
    revenue = money.convert(sums["m"].get(cid, {}))
    tally.cost_cents, tally.won_revenue_cents = cost.cents, revenue.cents
    tally.unconverted = dict(sorted(add_sums(dict(cost.unconverted), revenue.unconverted).items()))
    return tally


def _by_planned(plans: dict[str, Plan], counts: dict[str, int], sums: dict[str, dict[str, int]]
                ) -> tuple[dict[str | None, int], dict[str | None, dict[str, int]]]:
    """Counts and sums by campaign id, a campaign not planned by T (or none, "") counted as None."""
    by_count: dict[str | None, int] = defaultdict(int)
    by_sum: dict[str | None, dict[str, int]] = defaultdict(dict)
    for name, count in counts.items():
        by_count[name if name in plans else None] += count
    for name, currencies in sums.items():
        add_sums(by_sum[name if name in plans else None], currencies)
    return by_count, by_sum


def _attribution(plans: dict[str, Plan], counts: dict[str, dict[str, int]], sums: Sums,
                 money: Conversion) -> list[AttributionRow]:
    first, first_money = _by_planned(plans, counts["a"], sums["A"])
    last, last_money = _by_planned(plans, counts["b"], sums["B"])
    return [AttributionRow(as_uuid(cid), plans[cid].name if cid else None,
                           first[cid], money.convert(first_money[cid]).cents,
                           last[cid], money.convert(last_money[cid]).cents)
            for cid in [*plans, None]]


def _clv_by_first_touch(plans: dict[str, Plan], counts: dict[str, dict[str, int]], sums: Sums,
                        money: Conversion) -> list[CampaignValue]:
    customers, values = _by_planned(plans, counts["t"], sums["T"])
    rows = []
    for cid in [*plans, None]:
        total = money.convert(values[cid]).cents
        rows.append(CampaignValue(as_uuid(cid), plans[cid].name if cid else None, customers[cid], total,
                                  cents_each(total, customers[cid])))
    return rows


def _clv_by_channel(counts: dict[str, dict[str, int]], sums: Sums, money: Conversion) -> list[ChannelValue]:
    rows = []
    for channel, customers in sorted(counts["h"].items()):
        total = money.convert(sums["H"].get(channel, {})).cents
        rows.append(ChannelValue(channel, customers, total, cents_each(total, customers)))
    return rows


def _unconverted(plans: dict[str, Plan], counts: dict[str, dict[str, int]], sums: Sums, money: Conversion,
                 wanted: object) -> dict[str, int]:
    """Every cost and won revenue without a rate at T, of the wanted campaigns (or of none)."""
    total: dict[str, int] = {}
    for cid, plan in plans.items():
        if wanted(cid):  # type: ignore[operator]
            add_sums(total, money.convert({plan.currency: counts["c"].get(cid, 0)}).unconverted)
    for name, currencies in sums["m"].items():
        if wanted(name if name in plans else None):  # type: ignore[operator]
            add_sums(total, money.convert(currencies).unconverted)
    return dict(sorted(total.items()))


def summed_report(store: Store, as_of: datetime, channel: str | None = None,
                  money: Conversion = Conversion()) -> CampaignsReport:
    """Every figure as of `as_of` from the tallies; with `channel`, only that channel's campaigns and customers."""
    t = micros(as_of)
    plans = plans_as_of(store, t)
    counts, sums = _split(summed_share(store, t))
    tallies = {cid: _tally(cid, plan, counts, sums, money) for cid, plan in plans.items()}
    return assemble(as_of, channel, plans, tallies, _attribution(plans, counts, sums, money),
                    _clv_by_channel(counts, sums, money), _clv_by_first_touch(plans, counts, sums, money),
                    lambda wanted: _unconverted(plans, counts, sums, money, wanted), money)
