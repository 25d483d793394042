"""The campaigns read model's pre-summed tables: each lead's and customer's steps, and their sums per period.

`campaigns_steps` holds every lead's and customer's share of the report as changes at instants
(`unit_steps`); `campaigns_tallies` sums those changes, and every cost and response, per UTC year, month,
dekad (ten days) and day: a report as of T then adds the tallies of the years before T's, at most 11
months, 2 dekads and 10 days (25 tallies on a two-year history; 43 without dekads, each a few kB of JSON)
and the rows of T's day.
Both are pure functions of the fact tables, whatever order the events came in: after a batch of
events, the read model derives again the steps of each lead and customer the batch touched from their
facts (a handful of rows each; a response recorded long after the win it precedes simply changes the
customer's steps, and the tallies by the difference), replaces their rows and adds the difference to the
tallies (`refresh`). Sums do not care about order, and rows of the steps are written sorted.

Tallies are shared rows (not per home partition, unlike the funnel's): a report adds each of them, with
≈ 22 keys per campaign, and 64 partitions would multiply that work; batches of different partitions that
change the same tally are retried by the partitioned runtime (REPEATABLE READ, first updater wins).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, TypedDict, cast

from projections.campaigns.rows import CustomerRow, DealEventRow, DealRow, LeadRow
from projections.campaigns.unit_steps import CustomerFacts, Share, Steps, customer_steps, lead_steps, merge
from projections.read_model import Rows
from projections.tables import Table, held_json

DAY_MICROS = 86_400_000_000
_EPOCH_DAY = date(1970, 1, 1)
_CHUNK = 400  # ids per IN (…) list
Select = Callable[[str, list[Any]], list[Any]]  # SQL with ? placeholders → rows: `Rows.select`, `Store.query`


class StepRow(TypedDict):
    unit: str  # a lead's or a customer's id (they never collide)
    at: int
    deltas: Share


class TallyRow(TypedDict):
    """The sum of all changes of one UTC year (`grain` "y"), month ("m"), dekad ("k": `periods_of`) or day
    ("d"); `period` is the number of its first day since 1970-01-01."""

    grain: str
    period: int
    deltas: Share


STEPS = Table("campaigns_steps", (("unit", "TEXT"), ("at", "BIGINT"), ("deltas", "TEXT")), ("unit", "at"),
              indexes=(("at",),), json_columns=("deltas",), row_type=StepRow)
TALLIES = Table("campaigns_tallies", (("grain", "TEXT"), ("period", "INTEGER"), ("deltas", "TEXT")),
                ("grain", "period"), json_columns=("deltas",), row_type=TallyRow)
SUMMED_TABLES = (STEPS, TALLIES)


@lru_cache(maxsize=8192)
def periods_of(day: int) -> tuple[int, int, int]:
    """The first days (since 1970-01-01) of `day`'s UTC year, month and dekad (the 1st–10th, 11th–20th, or
    21st to the end of its month)."""
    first = _EPOCH_DAY + timedelta(days=day)
    month = (first.replace(day=1) - _EPOCH_DAY).days
    return (first.replace(month=1, day=1) - _EPOCH_DAY).days, month, month + min(first.day - 1, 29) // 10 * 10


# The tallies whose sum is everything before a day: its year's earlier years, its month's earlier months in the
# year, its dekad's earlier dekads in the month, its earlier days in the dekad (≤ 25 rows whatever the history).
BEFORE_DAY = ("(grain = 'y' AND period < ?) OR (grain = 'm' AND period >= ? AND period < ?) "
              "OR (grain = 'k' AND period >= ? AND period < ?) OR (grain = 'd' AND period >= ? AND period < ?)")


def before_day(day: int) -> list[int]:
    """The parameters of `BEFORE_DAY` for `day` (days since 1970-01-01)."""
    year, month, dekad = periods_of(day)
    return [year, year, month, month, dekad, dekad, day]


def periods(day: int) -> tuple[tuple[str, int], ...]:
    """The tallies a change on `day` adds to: its year's, month's, dekad's and day's."""
    year, month, dekad = periods_of(day)
    return ("y", year), ("m", month), ("k", dekad), ("d", day)


@dataclass
class Pending:
    """What a batch touched: the leads and customers whose steps to derive again, and its changes of the
    tallies, summed per day first (a rebuild's batch of 30,000 events touches a few dozen days: each tally
    row is then read, changed and written once a batch, not three times an event)."""

    leads: dict[str, LeadRow | None] = field(default_factory=dict)  # each as the batch found it (None: new)
    customers: set[str] = field(default_factory=set)
    days: dict[int, Share] = field(default_factory=lambda: defaultdict(dict))  # the batch's changes by UTC day


def pending(rows: Rows) -> Pending:
    found = rows.pending.get("campaigns")
    if found is None:
        found = rows.pending["campaigns"] = Pending()
    return cast(Pending, found)


def tally(rows: Rows, at: int, change: Share) -> None:
    """Add `change` (happened at `at`, µs) to the tallies of its periods (when the batch ends)."""
    merge(pending(rows).days[at // DAY_MICROS], change)


def write_tallies(rows: Rows, days: dict[int, Share], table: Table = TALLIES) -> None:
    """Add each day's changes to its day's, dekad's, month's and year's tally (rows of `table`, shaped as
    `TallyRow`: the tickets' too); a tally summing to nothing goes (as if nothing had happened then); keys in
    order, so that the rows do not depend on the order of the events."""
    totals: dict[tuple[str, int], Share] = defaultdict(dict)
    for day, change in days.items():
        for key in periods(day):
            merge(totals[key], change)
    for key, change in totals.items():
        row = cast("dict[str, Any] | None", rows.get(table, *key))
        deltas = dict(held_json(row, "deltas")) if row is not None else {}
        merge(deltas, change)
        if deltas:
            rows.put(table, TallyRow(grain=key[0], period=key[1], deltas=dict(sorted(deltas.items()))))
        elif row is not None:
            rows.delete(table, *key)


def refresh(rows: Rows, leads: Table) -> None:
    """Derive again the steps of the leads (rows of `leads`) and customers this batch touched, replace theirs
    and add the difference, and the batch's costs and responses, to the tallies."""
    todo = pending(rows)
    for lead_id, before in sorted(todo.leads.items()):  # a lead's steps are its row's: no need to read them
        after = cast(LeadRow, rows.get(leads, lead_id))
        replace_steps(rows, STEPS, todo.days, lead_id, lead_steps(before) if before is not None else {},
                      lead_steps(after))
    customers = sorted(todo.customers)
    if customers:
        old = stored_steps(rows, STEPS, customers)
        for facts in customer_facts(rows.select, customers):
            replace_steps(rows, STEPS, todo.days, facts.customer_id, old.get(facts.customer_id, {}),
                          customer_steps(facts))
    write_tallies(rows, todo.days)
    rows.pending.pop("campaigns", None)


def replace_steps(rows: Rows, table: Table, days: dict[int, Share], unit: str, old: Steps, new: Steps) -> None:
    """Replace the unit's steps (rows of `table`, shaped as `StepRow`) and add the difference to `days`."""
    for at in sorted(old.keys() | new.keys()):
        before, after = old.get(at, {}), new.get(at, {})
        if before == after:
            continue
        change = dict(after)
        merge(change, before, -1)
        merge(days[at // DAY_MICROS], change)
        if after:
            rows.put(table, StepRow(unit=unit, at=at, deltas=after))
        else:
            rows.delete(table, unit, at)


def stored_steps(rows: Rows, table: Table, units: list[str]) -> dict[str, Steps]:
    found: dict[str, Steps] = defaultdict(dict)
    for unit, at, deltas in select_in(rows.select, f"SELECT unit, at, deltas FROM {table.name} WHERE unit IN ({{}})",
                                      units):
        found[unit][at] = held_json({"deltas": deltas}, "deltas")
    return found


def select_in(select: Select, sql: str, ids: Iterable[str] | None) -> Iterator[Any]:
    """`sql` with its `{}` filled by placeholders, for every chunk of `ids`; None: for every id at once, one
    query (`IN ({})` read as `IS NOT NULL`; the caller passes over rows of ids it did not ask for)."""
    if ids is None:
        yield from select(sql.replace("IN ({})", "IS NOT NULL"), [])
        return
    ids = list(ids)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        yield from select(sql.format(", ".join("?" * len(chunk))), chunk)


# --- a customer's facts, for many customers at once ------------------------------------------------

_LEAD_COLUMNS = ("lead_id, campaign_id, captured_at, qualified_at, converted_at, customer_id, disqualified_at, "
                 "region, industry")


def customer_facts(select: Select, customer_ids: list[str], every: bool = False) -> list[CustomerFacts]:
    """Each customer's registration, deals and their events, the leads those deals name or the customer was
    converted from, and the responses by the customer or by those converted leads: six queries per 400
    (`every`: `customer_ids` are every customer: six queries, each reading its table once — a bulk fold's)."""
    facts = {cid: CustomerFacts(cid) for cid in customer_ids}

    def asked(ids: Iterable[str]) -> Iterable[str] | None:
        return None if every else ids
    for row in select_in(select, "SELECT customer_id, channel, campaign_id, registered_at, region, industry "
                                  "FROM campaigns_customers WHERE customer_id IN ({})", asked(customer_ids)):
        facts[row[0]].registration = CustomerRow._make(row)
    deals = [DealRow._make(row) for row in select_in(
        select, "SELECT deal_id, customer_id, campaign_id, lead_id, opened_at, currency FROM campaigns_deals "
                "WHERE customer_id IN ({})", asked(customer_ids))]
    converted = [LeadRow._make(row) for row in select_in(
        select, f"SELECT {_LEAD_COLUMNS} FROM campaigns_leads WHERE customer_id IN ({{}})", asked(customer_ids))]
    named = {deal.lead_id for deal in deals if deal.lead_id} - {lead.lead_id for lead in converted}
    leads = {lead.lead_id: lead for lead in converted} | {row[0]: LeadRow._make(row) for row in select_in(
        select, f"SELECT {_LEAD_COLUMNS} FROM campaigns_leads WHERE lead_id IN ({{}})", asked(sorted(named)))}
    events: dict[str, list[DealEventRow]] = defaultdict(list)
    for row in select_in(select, "SELECT deal_id, seq, occurred_at, kind, amount_cents FROM campaigns_deal_events "
                                "WHERE deal_id IN ({}) ORDER BY deal_id, seq", asked([deal.deal_id for deal in deals])):
        events[row[0]].append(DealEventRow._make(row))
    for deal in deals:
        one = facts[deal.customer_id]
        one.deals.append(deal)
        one.deal_events[deal.deal_id] = events.get(deal.deal_id, [])
        if deal.lead_id in leads:
            one.leads[deal.lead_id] = leads[deal.lead_id]
    for lead in converted:
        facts[lead.customer_id].leads[lead.lead_id] = lead  # type: ignore[index]
    _add_responses(select, facts, {lead.lead_id: lead.customer_id for lead in converted}, every)  # type: ignore[misc]
    return list(facts.values())


def _add_responses(select: Select, facts: dict[str, CustomerFacts], converted: dict[str, str], every: bool) -> None:
    """Responses by the customers, or by the leads converted into them (a response naming both, once)."""
    seen: set[tuple[str, int]] = set()
    columns = "stream_id, seq, campaign_id, occurred_at, customer_id, lead_id FROM campaigns_responses"
    found = [*select_in(select, f"SELECT {columns} WHERE customer_id IN ({{}})", None if every else list(facts)),
             *select_in(select, f"SELECT {columns} WHERE lead_id IN ({{}})", None if every else sorted(converted))]
    for stream_id, seq, campaign_id, at, customer_id, lead_id in found:
        if (stream_id, seq) in seen:
            continue
        seen.add((stream_id, seq))
        for who in {customer_id, converted.get(lead_id or "")} & facts.keys():
            facts[who].responses.append((campaign_id, at, customer_id, lead_id))


# --- both tables at once, from the fact tables (a bulk fold's last step) ----------------------------


def derive(select: Select) -> tuple[list[StepRow], list[TallyRow]]:
    """Every row of `campaigns_steps` and `campaigns_tallies` from the fact tables alone (`select` reads
    them): what the handlers keep, for a fold that writes the fact tables set-based (equal: test_summed)."""
    steps: list[StepRow] = []
    for row in select(f"SELECT {_LEAD_COLUMNS} FROM campaigns_leads ORDER BY lead_id", []):
        lead = LeadRow._make(row)
        steps += [StepRow(unit=lead.lead_id, at=at, deltas=deltas) for at, deltas in lead_steps(lead).items()]
    customers = sorted({cid for (cid,) in select(
        "SELECT customer_id FROM campaigns_customers UNION SELECT customer_id FROM campaigns_deals UNION "
        "SELECT customer_id FROM campaigns_leads WHERE customer_id IS NOT NULL UNION "
        "SELECT customer_id FROM campaigns_responses WHERE customer_id IS NOT NULL", [])})
    for facts in customer_facts(select, customers, every=True):  # each fact table read once: linear in them
        steps += [StepRow(unit=facts.customer_id, at=at, deltas=deltas) for at, deltas in customer_steps(facts).items()]
    tallies: dict[tuple[str, int], Share] = defaultdict(dict)
    changes = [(row["at"], row["deltas"]) for row in steps]
    changes += [(at, {f"r|{kind}|{cid}": 1}) for cid, kind, at in select(
        "SELECT campaign_id, kind, occurred_at FROM campaigns_responses", [])]
    changes += [(at, {f"c|{cid}": cents}) for cid, cents, at in select(
        "SELECT campaign_id, amount_cents, occurred_at FROM campaigns_costs", [])]
    for at, change in changes:
        for key in periods(at // DAY_MICROS):
            merge(tallies[key], change)
    return steps, [TallyRow(grain=grain, period=period, deltas=dict(sorted(deltas.items())))
                   for (grain, period), deltas in sorted(tallies.items()) if deltas]
