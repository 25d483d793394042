"""A history where one customer holds thousands of deals (the segments read model's worst case).

Each deal is opened and then won, lost, or won, reopened and won again; deals are saved one after the
other but start at random instants over three years, so the customer's purchases reach the read
models out of business-time order, as in an import of real data.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from domain.base import Meta
from services.application import CrmApplication
from services.commands import LoseDeal, OpenDeal, RegisterCustomer, ReopenDeal, WinDeal

START = datetime(2023, 1, 1, tzinfo=timezone.utc)
SPREAD_DAYS = 3 * 365
SEED = 11


def whale_history(app: CrmApplication, deals: int, seed: int = SEED) -> int:
    """Register one customer and give it `deals` deals; returns how many events were saved."""
    rng = random.Random(seed)
    app.ensure_default_pipelines()
    before = app.event_count()
    customer = app.register_customer(RegisterCustomer("大客户", "华东", "制造业", "web",
                                                      company="巨鲸集团"), Meta(occurred_at=START))
    for n in range(deals):
        at = START + timedelta(days=rng.uniform(0, SPREAD_DAYS))
        deal = app.open_deal(OpenDeal(customer, f"项目{n}", str(rng.randrange(1_000, 400_000)), owner="李娜"),
                             Meta(occurred_at=at))
        at += timedelta(days=rng.uniform(1, 60))
        fate = rng.random()
        if fate < 0.3:
            app.lose_deal(LoseDeal(deal, "价格"), Meta(occurred_at=at))
            continue
        app.win_deal(WinDeal(deal), Meta(occurred_at=at))
        if fate > 0.9:  # reopened later and won again: a purchase withdrawn, then made anew
            at += timedelta(days=rng.uniform(1, 200))
            app.reopen_deal(ReopenDeal(deal, "追加"), Meta(occurred_at=at))
            app.win_deal(WinDeal(deal), Meta(occurred_at=at + timedelta(days=rng.uniform(0, 30))))
    return app.event_count() - before
