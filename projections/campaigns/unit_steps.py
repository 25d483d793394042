"""What one lead or one customer adds to the campaigns report, as a step function of business time.

Every figure of the plain report is a sum over leads, customers, costs and responses, once the rules that
need a customer's other facts (a first win, a first or last touch, a lifetime value) are applied within
that customer. So each lead's and each customer's share of the figures at T is derived here from their own
facts with `domain.marketing`'s rules, exactly as `facts_report` derives it for everybody at once, and
kept as its changes at the instants its facts happened (`Steps`): the figures change nowhere else. The
read model sums those changes per day, month and year (`summed`), so a report as of T adds ≈ 45 tallies
and one day of changes instead of deriving every figure from every fact.

A share is a dict {key: int} (zeros dropped). Keys name the figure, then the currency where it is money
(cents of that currency: never two currencies in one sum; a report converts each sum at its instant's
rate), then the campaign id ("" for none) or channel — the free text last:

    l q v d x | campaign        leads captured, qualified, converted, disqualified new / after qualifying
    r|kind|campaign             responses of a kind          c|campaign       cost (the campaign's currency)
    n w o | campaign            deals, won, lost             m|cur|campaign   won revenue
    f|campaign                  new customers (first win)
    a|campaign  A|cur|campaign  won deals and revenue credited by first touch (b, B: by last touch)
    h|channel   H|cur|channel   buyers and their lifetime value by registration channel
    t|campaign  T|cur|campaign  the same by first-touch campaign

Campaign keys hold every campaign named, planned by T or not: the report keeps those planned by T and,
for attribution and first-touch value, counts the others as "no campaign", as `facts_report` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.marketing import Touch, credited_campaigns, deal_campaign, first_and_last_touch
from domain.pipeline import LOST, WON
from projections.campaigns.figures import UNKNOWN_CHANNEL
from projections.campaigns.rows import AMOUNT, CustomerRow, DealEventRow, DealRow, LeadRow

Share = dict[str, int]
Steps = dict[int, Share]  # instant (µs) → change of the share then; instants in order


def add(share: Share, key: str, delta: int) -> None:
    if delta:
        value = share.get(key, 0) + delta
        if value:
            share[key] = value
        else:
            del share[key]


def merge(total: Share, change: Share, sign: int = 1) -> None:
    for key, delta in change.items():
        add(total, key, sign * delta)


def steps_of(shares: Iterable[tuple[int, Share]]) -> Steps:
    """The changes between consecutive shares (instants in order, each share in force from its instant)."""
    steps: Steps = {}
    before: Share = {}
    for at, share in shares:
        change = dict(share)
        merge(change, before, -1)
        if change:
            steps[at] = dict(sorted(change.items()))
        before = share
    return steps


# --- a lead ---------------------------------------------------------------------------------------


def lead_share(lead: LeadRow, t: int) -> Share:
    """A lead's counts at `t` under its campaign (none without a campaign, or before its capture)."""
    share: Share = {}
    if lead.campaign_id is None or lead.captured_at > t:
        return share
    cid = lead.campaign_id
    qualified = lead.qualified_at is not None and lead.qualified_at <= t
    disqualified = lead.disqualified_at is not None and lead.disqualified_at <= t
    add(share, f"l|{cid}", 1)
    add(share, f"q|{cid}", qualified)
    add(share, f"v|{cid}", lead.converted_at is not None and lead.converted_at <= t)
    add(share, f"d|{cid}", disqualified and not qualified)
    add(share, f"x|{cid}", disqualified and qualified)
    return share


def lead_steps(lead: LeadRow) -> Steps:
    instants = sorted({lead.captured_at, *(at for at in (lead.qualified_at, lead.converted_at, lead.disqualified_at)
                                           if at is not None)})
    return steps_of((at, lead_share(lead, at)) for at in instants)


# --- a customer -----------------------------------------------------------------------------------


@dataclass
class CustomerFacts:
    """A customer's facts: registration, deals with their events, the leads those deals name or the customer
    was converted from, and the responses by the customer or by those converted leads (campaign, instant,
    and whose: the customer's own, else the lead's id)."""

    customer_id: str
    registration: CustomerRow | None = None
    deals: list[DealRow] = field(default_factory=list)
    deal_events: dict[str, list[DealEventRow]] = field(default_factory=dict)  # by deal, in seq order
    leads: dict[str, LeadRow] = field(default_factory=dict)
    responses: list[tuple[str, int, str | None, str | None]] = field(default_factory=list)  # campaign, at, customer, lead

    def instants(self) -> list[int]:
        """Every instant at which the customer's share may change."""
        found = {at for events in self.deal_events.values() for _, _, at, _, _ in events}
        found |= {deal.opened_at for deal in self.deals} | {at for _, at, _, _ in self.responses}
        for lead in self.leads.values():
            found |= {lead.captured_at} | ({lead.converted_at} if lead.converted_at is not None else set())
        if self.registration is not None:
            found.add(self.registration.registered_at)
        return sorted(found)


@dataclass(frozen=True)
class _Won:
    deal_id: str
    campaign_id: str | None
    at: int
    currency: str
    cents: int


def _in_force(events: list[DealEventRow], t: int) -> tuple[int, int] | str | None:
    """(instant, amount then) if the deal's last win, loss or reopening by `t` (in seq order) was a win, LOST
    if a loss, None if a reopening or none yet: `facts_report`'s rule."""
    amount, state = None, None
    for _, _, at, kind, cents in events:
        if at > t:
            continue
        if kind == AMOUNT:
            amount = cents
        else:
            state = (at, amount) if kind == WON else LOST if kind == LOST else None
    return state  # type: ignore[return-value]


def _deals_share(facts: CustomerFacts, t: int, share: Share) -> list[_Won]:
    wins = []
    for deal in facts.deals:
        if deal.opened_at > t:
            continue
        lead = facts.leads.get(deal.lead_id) if deal.lead_id else None
        cid = deal_campaign(deal.campaign_id, lead.campaign_id if lead and lead.captured_at <= t else None)
        key = cid or ""
        add(share, f"n|{key}", 1)
        state = _in_force(facts.deal_events.get(deal.deal_id, []), t)
        if isinstance(state, tuple):
            add(share, f"w|{key}", 1)
            add(share, f"m|{deal.currency}|{key}", state[1])
            wins.append(_Won(deal.deal_id, cid, state[0], deal.currency, state[1]))
        add(share, f"o|{key}", state == LOST)
    return wins


def _touches(facts: CustomerFacts, t: int) -> list[Touch]:
    """The customer's campaign touches by `t`: responses by them or by a lead converted into them by then,
    the capture of such a lead, and their registration (`facts_report._touches`)."""
    converted = {lead_id for lead_id, lead in facts.leads.items()
                 if lead.customer_id == facts.customer_id and lead.captured_at <= t
                 and lead.converted_at is not None and lead.converted_at <= t}
    touches = [Touch(at, campaign) for campaign, at, customer, lead in facts.responses
               if at <= t and (customer == facts.customer_id or lead in converted)]
    touches += [Touch(facts.leads[lead_id].captured_at, facts.leads[lead_id].campaign_id)  # type: ignore[arg-type]
                for lead_id in converted if facts.leads[lead_id].campaign_id]
    registration = facts.registration
    if registration is not None and registration.campaign_id and registration.registered_at <= t:
        touches.append(Touch(registration.registered_at, registration.campaign_id))
    return touches


def customer_share(facts: CustomerFacts, t: int) -> Share:
    share: Share = {}
    wins = _deals_share(facts, t, share)
    if not wins:
        return share
    first = min(wins, key=lambda win: (win.at, win.deal_id))
    add(share, f"f|{first.campaign_id or ''}", 1)
    touches = _touches(facts, t)
    for win in wins:
        by_first, by_last = credited_campaigns(touches, win.at)
        add(share, f"a|{by_first or ''}", 1)
        add(share, f"A|{win.currency}|{by_first or ''}", win.cents)
        add(share, f"b|{by_last or ''}", 1)
        add(share, f"B|{win.currency}|{by_last or ''}", win.cents)
    registration = facts.registration
    channel = registration.channel if registration is not None and registration.registered_at <= t else UNKNOWN_CHANNEL
    first_touch = first_and_last_touch(touches).first_touch or ""
    add(share, f"h|{channel}", 1)
    add(share, f"t|{first_touch}", 1)
    for win in wins:
        add(share, f"H|{win.currency}|{channel}", win.cents)
        add(share, f"T|{win.currency}|{first_touch}", win.cents)
    return share


def customer_steps(facts: CustomerFacts) -> Steps:
    return steps_of((at, customer_share(facts, at)) for at in facts.instants())
