"""A small log with at least one event of every type of the catalogue (Chinese text, personal fields,
money, dates, optional ids), for tests of export and import."""

from __future__ import annotations

from datetime import date

from services.application import CrmApplication
from tests.conftest import at


def record_every_event(crm: CrmApplication) -> None:
    """Record at least one event of every type into `crm`'s log, each aggregate's in business-time order."""
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.rename_stage("sales", "proposal", "报价方案 / Quote", at(-29))
    crm.insert_stage("sales", "pilot", "试点 / Pilot", "proposal", at(-28))

    campaign = crm.plan_campaign("春季新品发布会", "event", "12345.67", "CNY", at(0))
    crm.launch_campaign(campaign, at(0.5))
    crm.record_cost(campaign, "1E+3", at(0.6), note="场地费")

    lead = crm.capture_lead("王芳", "杭州云启科技有限公司", "华东", "互联网", "event", at(1),
                            contact="wang.fang@example.cn", campaign_id=campaign)
    crm.record_response(campaign, "registration", at(1), lead_id=lead)
    crm.assign_lead(lead, "李娜", "round_robin", at(1.5))
    crm.contact_lead(lead, "phone", "首次沟通，了解需求", at(2))
    crm.qualify_lead(lead, "预算明确", at(3))
    customer, deal = crm.convert_lead(lead, "云服务采购", "80000.50", "CNY", at(4), email="wf@example.cn",
                                      phone="+86 138 0000 0000", expected_close=date(2026, 6, 30))
    crm.record_response(campaign, "attendance", at(4.1), customer_id=customer)

    crm.change_contact_details(customer, "wangfang@example.cn", "", at(4.2))
    crm.log_touch(customer, "visit", "outbound", "上门拜访，\"演示\"顺利\n下周回访", at(4.3))
    crm.add_tag(customer, "重点客户", at(4.4))
    crm.remove_tag(customer, "重点客户", at(4.45))
    crm.change_consent(customer, True, at(4.5))

    crm.change_stage(deal, "first_contact", "客户回电，约了演示", at(5))
    crm.change_amount(deal, "90000", at(5.1))
    crm.change_owner(deal, "张伟", at(5.2))
    crm.lose_deal(deal, "预算冻结", at(5.3), competitor="某友商")
    crm.reopen_deal(deal, "预算恢复", at(5.4))
    crm.win_deal(deal, at(6), note="回款计划已确认")

    ticket = crm.open_ticket(customer, "系统登录失败", "high", "phone", at(7))
    crm.assign_ticket(ticket, "赵敏", at(7.1))
    crm.change_ticket_status(ticket, "waiting_customer", at(7.2))
    crm.record_customer_reply(ticket, "已提供截图", at(7.3))
    crm.resolve_ticket(ticket, "已远程协助处理", at(8))
    crm.rate_ticket(ticket, 5, "服务很及时", at(9))
    crm.reopen_ticket(ticket, "问题复现", at(9.5))
    crm.resolve_ticket(ticket, "已修复", at(9.8))
    crm.close_ticket(ticket, at(10))

    crm.disqualify_lead(crm.capture_lead("刘洋", "", "华北", "制造", "web", at(11)), "无预算", at(12))
    crm.close_campaign(campaign, at(13))
    forgotten = crm.register_customer("陈静", "上海某公司", "华东", "零售", "referral", at(14),
                                      email="cj@example.cn")
    crm.forget_customer(forgotten, at(15))
