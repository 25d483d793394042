"""The query side of the inspection read model: what changed in a window (A, B] — close dates moved
(slippage), amounts, stages — the deals without activity for N days as of B, and win/loss as of T.

Every answer reads only this read model's tables as of its instants (versions in force, rows at or before),
so that caught up incrementally, rebuilt or replayed up to B it is the same. Deals are filtered by owner,
team and pipeline as they stood at the window's end (the owner's team then, `domain.targets.OwnerTeam`), and
shown by title and customer (company, else name; "(forgotten)" once forgotten), opened from their seals in one
go. Periods are those of the zone asked (the installation's, `CRM_TIME_ZONE`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from domain.exchange_rates import Conversion, add_sums
from domain.periods import UTC, Period, parse_period, period_of, period_of_day
from domain.pipeline import LOST, WON
from domain.pipeline_inspection import (DIRECTIONS, days_inactive, direction, is_inactive, periods_moved,
                                        require_days, require_inspection_grain, require_window, win_rate_percent)
from projections.inspection.rows import AMOUNT, CLOSE, DEAL, STAGE, ChangeRow, VersionRow
from projections.ports import Store, UnsealAll
from projections.tables import from_micros, micros

WINLOSS_BY = ("stage", "owner", "team", "product", "period", "pipeline", "competitor")
_IN_FORCE = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
_VERSION = ", ".join(VersionRow._fields)


def require_winloss_by(by: str | None) -> str | None:
    if by is not None and by not in WINLOSS_BY:
        raise ValueError(f"win/loss is grouped by {', '.join(WINLOSS_BY)}, not {by!r}")
    return by


@dataclass(frozen=True)
class Where:
    """Which deals: of this owner, of this owner's team, in this pipeline (None: any), as of the answer's end."""

    owner: str | None = None
    team: str | None = None
    pipeline: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"owner": self.owner, "team": self.team, "pipeline": self.pipeline}


@dataclass
class _Deals:
    """The deals as they stood at T, with what shows them: title, customer, team and product then."""

    t: int
    versions: dict[str, VersionRow]
    heads: dict[str, tuple[str, str, str]]  # deal → customer id, pipeline, sealed title
    customers: dict[str, str]  # customer → sealed company, else name (registered by T)
    teams: dict[str, str]  # owner → team at T
    products: dict[str, str]  # deal or customer → product at T

    @classmethod
    def load(cls, store: Store, t: int) -> _Deals:
        versions = {row[0]: VersionRow._make(row) for row in store.query(
            f"SELECT {_VERSION} FROM inspection_deal_versions WHERE {_IN_FORCE}", [t, t])}
        heads = {deal: (customer, pipeline, title) for deal, customer, pipeline, title in store.query(
            "SELECT deal_id, customer_id, pipeline, title FROM inspection_deals")}
        customers = {customer: company or name for customer, name, company in store.query(
            "SELECT customer_id, name, company FROM inspection_customers WHERE registered_at <= ?", [t])}
        return cls(t, versions, heads, customers, _latest(store, "inspection_teams", "owner", "team", t),
                   _latest(store, "inspection_products", "record_id", "product", t))

    def team(self, deal_id: str) -> str:
        return self.teams.get(self.versions[deal_id].owner, "")

    def product(self, deal_id: str) -> str:
        """The deal's own product then, else its customer's, else ""."""
        return self.products.get(deal_id) or self.products.get(self.heads[deal_id][0], "")

    def chosen(self, where: Where) -> list[str]:
        """The deals standing at T that `where` picks, by id."""
        return sorted(deal for deal, version in self.versions.items()
                      if (where.owner is None or version.owner == where.owner)
                      and (where.team is None or self.teams.get(version.owner, "") == where.team)
                      and (where.pipeline is None or self.heads[deal][1] == where.pipeline))

    def item(self, deal_id: str) -> dict[str, Any]:
        """A deal as a report shows it (title and customer still sealed: `_open` opens them)."""
        version, (customer, pipeline, title) = self.versions[deal_id], self.heads[deal_id]
        return {"deal_id": deal_id, "deal": title, "customer_id": customer, "customer": self.customers.get(customer, ""),
                "pipeline": pipeline, "owner": version.owner, "stage": version.stage, "status": version.status,
                "amount_cents": version.amount_cents, "currency": version.currency}


def _latest(store: Store, table: str, key: str, value: str, t: int) -> dict[str, str]:
    """Each key's last value at or before T (by instant, then event)."""
    return {k: v for k, v in store.query(f"SELECT {key}, {value} FROM {table} WHERE at <= ? ORDER BY at, seq", [t])}


class InspectionQueries:
    def __init__(self, store: Store, unseal_all: UnsealAll) -> None:
        self.store, self.unseal_all = store, unseal_all

    # --- slippage and changes in (start, end] ---------------------------------------------------------

    def slippage(self, start: datetime, end: datetime, grain: str = "quarter", zone: tzinfo = UTC,
                 where: Where = Where()) -> dict[str, Any]:
        """Deals whose close date moved in (start, end]: net from their date before the first move to their
        date after the last, classified by `grain`'s periods (`domain.pipeline_inspection.direction`)."""
        require_window(start, end)
        require_inspection_grain(grain)
        deals, by_deal = self._window(start, end, CLOSE, where)
        items = [_slipped(deals.item(deal), changes, grain, zone) for deal, changes in by_deal.items()]
        items.sort(key=lambda i: (DIRECTIONS.index(i["direction"]), -abs(i["periods_moved"] or 0), i["deal_id"]))
        counts = dict.fromkeys(DIRECTIONS, 0)
        for item in items:
            counts[item["direction"]] += 1
        return {**_window_head(start, end, zone, where), "grain": grain, "counts": counts,
                "deals": self._opened(items, ("changes", "reason"))}

    def changes(self, start: datetime, end: datetime, zone: tzinfo = UTC, where: Where = Where()) -> dict[str, Any]:
        """Amount changes and stage moves (wins, losses, reopenings too) in (start, end], per deal."""
        require_window(start, end)
        deals, amounts = self._window(start, end, AMOUNT, where)
        _, stages = self._window(start, end, STAGE, where, deals)
        amount_items = [_amounts(deals.item(deal), changes, zone) for deal, changes in amounts.items()]
        stage_items = [_stages(deals.item(deal), changes, zone) for deal, changes in stages.items()]
        return {**_window_head(start, end, zone, where), "amounts": self._opened(amount_items),
                "stages": self._opened(stage_items, ("moves", "reason"))}

    def _window(self, start: datetime, end: datetime, kind: str, where: Where,
                deals: _Deals | None = None) -> tuple[_Deals, dict[str, list[ChangeRow]]]:
        """The deals at `end` and the changes of `kind` in (start, end] of those `where` picks, per deal."""
        deals = deals or _Deals.load(self.store, micros(end))
        chosen = set(deals.chosen(where))
        found: dict[str, list[ChangeRow]] = defaultdict(list)
        for row in self.store.query(f"SELECT {', '.join(ChangeRow._fields)} FROM inspection_changes "
                                    "WHERE kind = ? AND at > ? AND at <= ? ORDER BY deal_id, at, seq",
                                    [kind, micros(start), micros(end)]):
            change = ChangeRow._make(row)
            if change.deal_id in chosen:
                found[change.deal_id].append(change)
        return deals, found

    # --- inactivity as of B --------------------------------------------------------------------------

    def inactive(self, as_of: datetime, days: int, zone: tzinfo = UTC, where: Where = Where()) -> dict[str, Any]:
        """Open deals at `as_of` without activity for `days` × 24 h: no event of their own, and no touch and no
        ticket event of their customer, since; longest inactive first."""
        require_days(days)
        t = micros(as_of)
        deals = _Deals.load(self.store, t)
        last = self._last_activity(t)
        items = []
        for deal in deals.chosen(where):
            version, customer = deals.versions[deal], deals.heads[deal][0]
            if version.status != "open":
                continue
            at, kind = max(last.get(deal, (0, DEAL)), last.get(customer, (0, DEAL)))
            if at and is_inactive(from_micros(at), as_of, days):
                items.append({**deals.item(deal), "expected_close": version.expected_close,
                              "last_activity_at": _shown(at, zone), "last_activity": kind,
                              "days_inactive": days_inactive(from_micros(at), as_of), "_at": at})
        items.sort(key=lambda i: (i.pop("_at"), i["deal_id"]))
        return {"as_of": as_of.astimezone(zone).isoformat(), "time_zone": str(zone), "days": days,
                "filters": where.to_dict(), "deals": self._opened(items)}

    def _last_activity(self, t: int) -> dict[str, tuple[int, str]]:
        """Each deal's last own event, and each customer's last touch or ticket event, at or before T."""
        last: dict[str, tuple[int, str]] = {}
        for record, kind, at in self.store.query(
                "SELECT CASE WHEN kind = 'deal' THEN record_id ELSE customer_id END, kind, MAX(at) "
                "FROM inspection_activity WHERE at <= ? GROUP BY CASE WHEN kind = 'deal' THEN record_id "
                "ELSE customer_id END, kind", [t]):
            last[record] = max(last.get(record, (0, DEAL)), (at, kind))
        return last

    # --- win/loss as of T ----------------------------------------------------------------------------

    def winloss(self, as_of: datetime, by: str | None = None, grain: str | None = None, zone: tzinfo = UTC,
                where: Where = Where(), money: Conversion = Conversion(), period: str | None = None
                ) -> dict[str, Any]:
        """Deals won and lost as they stood at `as_of`: counts, values in the reporting currency at the rates
        then, win rate, loss reasons and competitors — in all and per `by`; periods of `grain` (default quarter),
        or only those closed in `period` (which names its own grain)."""
        require_winloss_by(by)
        if period is not None and grain is not None:
            raise ValueError("give either a period or a grain: a period names its own grain")
        only = None if period is None else _period(period, zone)
        grain = only.grain if only is not None else require_inspection_grain(grain or "quarter")
        deals = _Deals.load(self.store, micros(as_of))
        unconverted: dict[str, int] = {}
        decided = [_decided(deals, deal, grain, zone, money, unconverted) for deal in deals.chosen(where)
                   if deals.versions[deal].status in (WON, LOST)]
        decided = [d for d in decided if only is None or d["period"] == only.label]
        decided = self._opened(decided)
        decided.sort(key=lambda d: (d["closed_at"], d["deal_id"]))
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for deal in decided:
            groups[str(deal[_GROUP_FIELD.get(by or "", by or "")]) if by else ""].append(deal)
        return {"as_of": as_of.astimezone(zone).isoformat(), "time_zone": str(zone), "grain": grain, "by": by,
                "period": None if only is None else only.label, "filters": where.to_dict(), **money.to_dict(),
                "totals": _tally(decided),
                "groups": [{"group": key, **_tally(found)} for key, found in sorted(groups.items())] if by else [],
                "deals": decided, "unconverted": dict(sorted(unconverted.items()))}

    # --- for equivalence checks and exports -------------------------------------------------------------

    def summary(self, as_of: datetime, zone: tzinfo = UTC, money: Conversion = Conversion()) -> dict[str, Any]:
        """Every answer as of `as_of`: windows of a week and of 90 days ending then, inactivity of 0 and 3 days,
        win/loss in all and by each axis."""
        answers: dict[str, Any] = {}
        for days in (7, 90):
            start = as_of - timedelta(days=days)
            answers[f"slippage:{days}"] = self.slippage(start, as_of, "month" if days == 7 else "quarter", zone)
            answers[f"changes:{days}"] = self.changes(start, as_of, zone)
        for days in (0, 3):
            answers[f"inactive:{days}"] = self.inactive(as_of, days, zone)
        for by in (None, *WINLOSS_BY):
            answers[f"winloss:{by}"] = self.winloss(as_of, by, "month", zone, money=money)
        answers["winloss:sales"] = self.winloss(as_of, "owner", zone=zone, where=Where(pipeline="sales"), money=money)
        return answers

    def _opened(self, items: list[dict[str, Any]], nested: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """The items with their sealed texts opened (title, customer, reason, competitor; and `nested`'s, a list
        field and its text field), in one go."""
        fields = [(item, name) for item in items for name in ("deal", "customer", "reason", "competitor")
                  if name in item]
        if nested is not None:
            fields += [(inner, nested[1]) for item in items for inner in item[nested[0]]]
        texts = self.unseal_all([holder[name] for holder, name in fields])
        for (holder, name), text in zip(fields, texts):
            holder[name] = text
        return items


_GROUP_FIELD = {"stage": "closed_from"}


def _window_head(start: datetime, end: datetime, zone: tzinfo, where: Where) -> dict[str, Any]:
    return {"from": start.astimezone(zone).isoformat(), "to": end.astimezone(zone).isoformat(),
            "time_zone": str(zone), "filters": where.to_dict()}


def _shown(at: int, zone: tzinfo) -> str:
    return from_micros(at).astimezone(zone).isoformat()


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _slipped(item: dict[str, Any], changes: list[ChangeRow], grain: str, zone: tzinfo) -> dict[str, Any]:
    old, new = _day(changes[0].old), _day(changes[-1].new)
    assert new is not None
    return {**item, "old_close": changes[0].old or None, "new_close": changes[-1].new,
            "old_period": None if old is None else period_of_day(old, grain, zone).label,
            "new_period": period_of_day(new, grain, zone).label, "direction": direction(old, new, grain),
            "periods_moved": None if old is None else periods_moved(old, new, grain),
            "changes": [{"at": _shown(c.at, zone), "old_close": c.old or None, "new_close": c.new, "actor": c.actor,
                         "reason": c.reason} for c in changes]}


def _amounts(item: dict[str, Any], changes: list[ChangeRow], zone: tzinfo) -> dict[str, Any]:
    old, new = int(changes[0].old), int(changes[-1].new)
    return {**item, "old_amount_cents": old, "new_amount_cents": new, "delta_cents": new - old,
            "changes": [{"at": _shown(c.at, zone), "old_amount_cents": int(c.old), "new_amount_cents": int(c.new),
                         "actor": c.actor} for c in changes]}


def _stages(item: dict[str, Any], changes: list[ChangeRow], zone: tzinfo) -> dict[str, Any]:
    return {**item, "from_stage": changes[0].old, "to_stage": changes[-1].new,
            "moves": [{"at": _shown(c.at, zone), "from_stage": c.old, "to_stage": c.new, "actor": c.actor,
                       "reason": c.reason} for c in changes]}


def _period(label: str, zone: tzinfo) -> Period:
    period = parse_period(label, zone)
    require_inspection_grain(period.grain)
    return period


def _decided(deals: _Deals, deal: str, grain: str, zone: tzinfo, money: Conversion,
             unconverted: dict[str, int]) -> dict[str, Any]:
    version = deals.versions[deal]
    closed = from_micros(version.closed_at or 0)
    value = money.cents(version.amount_cents, version.currency)
    if value is None:
        add_sums(unconverted, {version.currency: version.amount_cents})
    return {**deals.item(deal), "outcome": version.status, "closed_at": closed.astimezone(zone).isoformat(),
            "period": period_of(closed, grain, zone).label, "closed_from": version.closed_from,
            "reason": version.reason, "competitor": version.competitor, "product": deals.product(deal),
            "team": deals.team(deal), "value_cents": value or 0}


def _tally(deals: list[dict[str, Any]]) -> dict[str, Any]:
    won = [d for d in deals if d["outcome"] == WON]
    lost = [d for d in deals if d["outcome"] == LOST]
    return {"won": len(won), "won_cents": sum(d["value_cents"] for d in won), "lost": len(lost),
            "lost_cents": sum(d["value_cents"] for d in lost), "win_rate_percent": win_rate_percent(len(won), len(lost)),
            "reasons": _counted(lost, "reason"), "competitors": _counted([d for d in lost if d["competitor"]],
                                                                         "competitor")}


def _counted(deals: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Deals and value per value of `field`, most deals first."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for deal in deals:
        found[deal[field]][0] += 1
        found[deal[field]][1] += deal["value_cents"]
    return [{field: key, "deals": n, "cents": cents}
            for key, (n, cents) in sorted(found.items(), key=lambda kv: (-kv[1][0], kv[0]))]
