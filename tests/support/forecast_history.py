"""A small sales history with a known monthly series, for the history-based forecast's tests: each month of
`months` opens deals that move through two stages and are won (or lost) in that month, so that what was won in
each month (in Asia/Shanghai) is known in advance, with a yearly peak in December and a trough in February.

Why through the application's commands and not rows: the forecast reads the forecast read model, which is fed
by the events, so the test goes through the same path as a real installation (about 10 ms per deal).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from domain.base import Meta
from services.application import CrmApplication
from services.commands import ChangeStage, LoseDeal, OpenDeal, RegisterCustomer, WinDeal

SHANGHAI = ZoneInfo("Asia/Shanghai")
SEASON = (1.0, 0.6, 0.9, 1.0, 1.1, 1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.6)  # January … December: Feb trough, Dec peak


def month_start(first: date, months: int) -> date:
    year, index = divmod(first.year * 12 + first.month - 1 + months, 12)
    return date(year, index + 1, 1)


def build(crm: CrmApplication, first: date, months: int) -> dict[date, int]:
    """Four deals opened on the 2nd of each month at 10:00 Shanghai and moved to `proposal` on the 5th: two won
    on the 20th, one on the 1st of the next month at 07:00 Shanghai (still the previous day in UTC), one lost
    on the 21st. Returns the cents won per month of Shanghai (first day → cents)."""
    crm.ensure_default_pipelines(Meta(occurred_at=datetime(2000, 1, 1, tzinfo=SHANGHAI), actor="setup"))
    customer = crm.register_customer(RegisterCustomer("上海甲公司", "华东", "制造业", "web"), _at(first, 1, 9))
    won: dict[date, int] = {}
    for k in range(months):
        month = month_start(first, k)
        amount = round(10_000 * SEASON[month.month - 1], 2)
        for n in range(4):
            deal = crm.open_deal(OpenDeal(customer, f"第{k}-{n}单", str(amount), owner="李娜",
                                          expected_close=date(month.year, month.month, 25)), _at(month, 2, 10))
            crm.change_stage(ChangeStage(deal, "proposal"), _at(month, 5, 10))
            if n == 3:
                crm.lose_deal(LoseDeal(deal, "价格太高 / price too high"), _at(month, 21, 10))
                continue
            won_at = _at(month, 20, 10) if n else _at(month_start(month, 1), 1, 7)
            crm.win_deal(WinDeal(deal), won_at)
            key = month_start(won_at.occurred_at.date(), 0)
            won[key] = won.get(key, 0) + round(amount * 100)
    return won


def _at(month: date, day: int, hour: int) -> Meta:
    return Meta(occurred_at=datetime(month.year, month.month, day, hour, tzinfo=SHANGHAI), actor="李娜")
