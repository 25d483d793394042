"""Writing events in an older stored shape, as a previous release of the CRM would have stored them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson

from domain.deal import Deal
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from tests.conftest import at


def store_in_old_shape(app: CrmApplication, event: Any, drop: tuple[str, ...]) -> None:
    """Append `event` as version 1 of its class stored it: without the fields `drop` names."""
    stored = app.mapper.to_stored_event(event)
    state = orjson.loads(stored.state)
    for name in (*drop, "class_version"):
        state.pop(name, None)
    app.recorder.insert_events([type(stored)(stored.originator_id, stored.originator_version, stored.topic,
                                             orjson.dumps(state))])


def lost_deals(app: CrmApplication, old_shape: bool) -> None:
    """Two lost deals; the first loss is stored as release 1 stored it when `old_shape`."""
    customer = app.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", id=UUID(int=1), company="某公司"), at(0))
    for number, competitor in ((1, ""), (2, "金蝶")):
        deal_id = app.open_deal(OpenDeal(customer, f"项目{number}", "1000", id=UUID(int=(10 + number) << 6 | 1),
                                         owner="李娜"), at(number))  # in the customer's home partition, 1
        deal = app.get(Deal, deal_id)
        deal.lose("选择了竞争对手", at(number + 1), competitor)
        if old_shape and number == 1:
            store_in_old_shape(app, deal.collect_events()[0], drop=("competitor",))
        else:
            app.save_new(deal)
