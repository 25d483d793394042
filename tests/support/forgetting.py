"""A person whose every free-text field holds a string found nowhere else, and the search for those strings
in whatever a store gives back (text, bytes, hex-encoded bytea) — shared by the SQLite and the
PostgreSQL + Kafka tests of forgetting."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from services.application import CrmApplication
from services.commands import (AddTag, AssignLead, CaptureLead, ChangeContactDetails, ChangeStage, ContactLead,
                               ConvertLead, LogTouch, LoseDeal, OpenTicket, QualifyLead, RateTicket,
                               RecordCustomerReply, RegisterCustomer, RemoveTag, ReopenDeal, ReopenTicket,
                               ResolveTicket, WinDeal)
from tests.conftest import at

NAME, COMPANY, CONTACT = "甄试名", "甄氏五金行", "zhen-lead-contact@example.org"
EMAIL, PHONE = "zhen.shiming@example.org", "13700001111"
SECRETS = {
    "name": NAME, "company": COMPANY, "lead contact": CONTACT, "email": EMAIL, "phone": PHONE,
    "lead summary": "甄先生首次电话沟通", "qualify note": "甄先生预算八十万", "deal title": "甄家仓库改造",
    "stage reason": "甄太太同意下周面谈", "loss reason": "甄先生嫌贵", "competitor": "甄对手科技",
    "reopen reason": "甄先生回心转意", "win note": "甄先生签字", "touch": "甄先生说孩子在杭州读书",
    "tag": "甄家贵宾", "second tag": "甄家老客", "ticket subject": "甄先生无法登录",
    "reply": "甄先生回复说密码是生日", "resolution": "已为甄先生重置", "comment": "甄先生很满意",
    "ticket reopen": "甄先生又登录不上", "inbound touch": "甄先生浏览了价格页",
    "refused inbound": "甄先生的传真内容",
}


def record_person(app: CrmApplication) -> dict[str, UUID]:
    """The person's lead, conversion, touches, tags, deal and ticket, with every free-text field filled."""
    s = SECRETS
    lead = app.capture_lead(CaptureLead(NAME, "华东", "零售", "web", company=COMPANY, contact=CONTACT), at(0))
    app.assign_lead(AssignLead(lead, "李娜", "manual"), at(1))
    app.contact_lead(ContactLead(lead, "phone", s["lead summary"]), at(1))
    app.qualify_lead(QualifyLead(lead, s["qualify note"]), at(2))
    customer, deal = app.convert_lead(ConvertLead(lead, s["deal title"], "80000", "CNY", EMAIL, PHONE), at(3))
    app.log_touch(LogTouch(customer, "visit", "outbound", s["touch"]), at(4))
    app.add_tag(AddTag(customer, s["tag"]), at(4))
    app.add_tag(AddTag(customer, s["second tag"]), at(4))
    app.remove_tag(RemoveTag(customer, s["second tag"]), at(4))
    app.change_contact_details(ChangeContactDetails(customer, EMAIL, ""), at(5))
    app.change_stage(ChangeStage(deal, "proposal", s["stage reason"]), at(5))
    app.lose_deal(LoseDeal(deal, s["loss reason"], s["competitor"]), at(6))
    app.reopen_deal(ReopenDeal(deal, s["reopen reason"]), at(7))
    app.win_deal(WinDeal(deal, s["win note"]), at(8))
    ticket = app.open_ticket(OpenTicket(customer, s["ticket subject"], "phone", priority="high"), at(9))
    app.record_customer_reply(RecordCustomerReply(ticket, s["reply"]), at(9))
    app.resolve_ticket(ResolveTicket(ticket, s["resolution"]), at(10))
    app.rate_ticket(RateTicket(ticket, 5, s["comment"]), at(10))
    app.reopen_ticket(ReopenTicket(ticket, s["ticket reopen"]), at(11))
    return {"lead": lead, "customer": customer, "deal": deal, "ticket": ticket}


def record_someone_else(app: CrmApplication) -> UUID:
    """Another customer, whose data must stay readable."""
    other = app.register_customer(RegisterCustomer("李雷", "华北", "教育", "event", company="李氏茶行",
                                                   email="lilei@example.com"), at(0))
    app.log_touch(LogTouch(other, "phone", "inbound", "李先生询价"), at(1))
    app.add_tag(AddTag(other, "李家常客"), at(2))
    return other


_HEX = re.compile(rb"\\x((?:[0-9a-fA-F]{2})+)")


def leaked(found: Any, where: str) -> list[str]:
    """"<where>: <which secret>" for each secret in `found` (text, bytes, or anything with a str()),
    also inside hex-encoded bytea (`\\x…`, as pg_dump and ::text write it)."""
    data = found if isinstance(found, bytes) else str(found).encode()
    blobs = [data, *(bytes.fromhex(match.decode()) for match in _HEX.findall(data))]
    return [f"{where}: {label}" for label, secret in SECRETS.items()
            if any(secret.encode() in blob for blob in blobs)]
