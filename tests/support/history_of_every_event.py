"""A small log with at least one event of every type of the catalogue (Chinese text, personal fields,
money, dates, optional ids, an installation's own vocabulary and unknown dimensions), for tests of export and
import."""

from __future__ import annotations

from datetime import date

from domain.campaign import Campaign
from domain.reminder_rules import Reminder, StageEntry, thresholds
from domain.segment_change_rules import SegmentChange, TierChange
from services.application import CrmApplication
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.commands import (AddTag, AssignLead, AssignTicket, CaptureLead, ChangeAmount, ChangeConsent,
                               ChangeContactDetails, ChangeCustomerProperties, ChangeDealProperties,
                               ChangeLeadProperties, ChangeOwner, ChangeStage, ChangeTicketStatus, CloseCampaign,
                               CloseTicket, ContactLead, ConvertLead, DisqualifyLead, ForgetCustomer, InsertStage,
                               LaunchCampaign, LogTouch, LoseDeal, OpenDeal, OpenTicket, PlanCampaign, QualifyLead,
                               RateTicket, RecordCost, RecordCustomerReply, RecordExchangeRate, RecordResponse,
                               RegisterCustomer, RemoveTag, RenameStage, ReopenDeal, ReopenTicket, ResolveTicket,
                               SetStageReminders, WinDeal)
from services.commands.forecasts import (AssignTeam, ChangeExpectedClose, ChangeForecastCategory, ChangeProbability,
                                         SetStageForecast, SetTarget)
from services.commands.vocabularies import AddVocabularyValue, RetireVocabularyValue, SetVocabulary
from tests.conftest import at


def record_every_event(crm: CrmApplication) -> None:
    """Record at least one event of every type into `crm`'s log, each aggregate's in business-time order."""
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.rename_stage(RenameStage("sales", "proposal", "报价方案 / Quote"), at(-29))
    crm.insert_stage(InsertStage("sales", "pilot", "试点 / Pilot", "proposal"), at(-28))
    crm.set_stage_forecast(SetStageForecast("sales", "pilot", 35, "best_case"), at(-27.9))
    crm.set_target(SetTarget("owner", "李娜", "2026-Q1", "500000", "CNY", "年度计划拆解"), at(-27.8))
    crm.set_target(SetTarget("owner", "李娜", "2026-Q1", "550000.50", "CNY", "上调"), at(-27.7))
    crm.set_target(SetTarget("team", "华东一组", "2026-03", "120000", "USD"), at(-27.6))
    crm.assign_team(AssignTeam("李娜", "华东一组", "入职"), at(-27.5))
    crm.assign_team(AssignTeam("李娜", "", "调岗"), at(-27.4))
    crm.set_stage_reminders(SetStageReminders("sales", "first_contact", [0.1, 2]), at(-27.3))
    crm.set_vocabulary(SetVocabulary("loss_reason", ["价格", "竞品"]), at(-27))
    crm.set_vocabulary(SetVocabulary("loss_reason", ["预算冻结", "价格", "竞品"], open=True), at(-26.5))
    crm.add_vocabulary_value(AddVocabularyValue("acquisition_channel", "展会邀约"), at(-26))
    crm.retire_vocabulary_value(RetireVocabularyValue("acquisition_channel", "partner"), at(-25))

    campaign = crm.plan_campaign(PlanCampaign("春季新品发布会", "event", "12345.67", source="hubspot",
                                               external_id="campaign-2026-春季"), at(0))
    crm.define_variants(DefineVariants(campaign, [
        {"key": "A", "name": "对照：原邀请函", "copy": "诚邀您参加\n春季新品发布会", "channel": "email", "weight": 1},
        {"key": "B", "name": "新邀请函", "copy": "限时名额，先到先得", "landing_page": "https://example.cn/春季?v=b",
         "offer": "到场送礼", "weight": 2},
        {"key": "对照组二", "weight": 1}], "首轮 A/B 测试"), at(0.4))
    crm.launch_campaign(LaunchCampaign(campaign), at(0.5))
    crm.record_cost(RecordCost(campaign, "1E+3", "场地费"), at(0.6))
    crm.record_exposures(RecordExposures(campaign, "A", 500, "邮件群发"), at(0.7))
    crm.record_exposures(RecordExposures(campaign, "B", 1000), at(0.7))

    lead = crm.capture_lead(CaptureLead("王芳", "华东", "互联网", "event", company="杭州云启科技有限公司",
                                        contact="wang.fang@example.cn", campaign_id=campaign, variant="B"), at(1))
    crm.record_response(RecordResponse(campaign, "registration", lead_id=lead, variant="B"), at(1))
    crm.assign_lead(AssignLead(lead, "李娜", "round_robin"), at(1.5))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通，了解需求"), at(2))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(3))
    crm.change_lead_properties(ChangeLeadProperties(lead, {"product": "云主机 Pro", "team": "华东一组"}), at(3.5))
    customer, deal = crm.convert_lead(ConvertLead(lead, "云服务采购", "80000.50", "CNY", "wf@example.cn",
                                                  "+86 138 0000 0000", date(2026, 6, 30)), at(4))
    crm.record_response(RecordResponse(campaign, "attendance", customer), at(4.1))
    crm.stop_variant(StopVariant(campaign, "对照组二", "样本太小"), at(4.12))
    crm.declare_winner(DeclareWinner(campaign, "B", "报名率更高"), at(4.13))
    old_style = crm.get(Campaign, campaign)  # a response as logs before home partitions hold it: the same fact
    old_style.record_response("click", at(4.15), customer_id=customer, lead_id=lead)
    crm.save_new(old_style)

    crm.change_contact_details(ChangeContactDetails(customer, "wangfang@example.cn", ""), at(4.2))
    crm.log_touch(LogTouch(customer, "visit", "outbound", "上门拜访，\"演示\"顺利\n下周回访"), at(4.3))
    crm.add_tag(AddTag(customer, "重点客户"), at(4.4))
    crm.remove_tag(RemoveTag(customer, "重点客户"), at(4.45))
    crm.change_consent(ChangeConsent(customer, True), at(4.5))
    crm.change_customer_properties(ChangeCustomerProperties(customer, {"account_size": "大型"}), at(4.6))

    entered = crm.change_stage(ChangeStage(deal, "first_contact", "客户回电，约了演示"), at(5))
    entry = StageEntry(deal, "deal", "sales", "first_contact", entered, at(5).occurred_at, at(4).occurred_at)
    crm.save_new(Reminder.emit(entry, thresholds(entry, [0.1, 2])[0], "李娜", customer, at(5.15, "crm reminders")))
    crm.change_amount(ChangeAmount(deal, "90000"), at(5.1))
    crm.change_owner(ChangeOwner(deal, "张伟"), at(5.2))
    crm.change_expected_close(ChangeExpectedClose(deal, date(2026, 7, 15), "客户预算推迟"), at(5.21))
    crm.change_probability(ChangeProbability(deal, 65, "口头确认"), at(5.22))
    crm.change_probability(ChangeProbability(deal, None, ""), at(5.225))
    crm.change_forecast_category(ChangeForecastCategory(deal, "commit", "签约在即"), at(5.23))
    crm.change_deal_properties(ChangeDealProperties(deal, {"product": "云主机 Max", "team": ""}), at(5.25))
    crm.lose_deal(LoseDeal(deal, "预算冻结", "某友商"), at(5.3))
    crm.reopen_deal(ReopenDeal(deal, "预算恢复"), at(5.4))
    crm.win_deal(WinDeal(deal, "回款计划已确认"), at(6))

    ticket = crm.open_ticket(OpenTicket(customer, "系统登录失败", "phone", priority="high",
                                             source="zendesk", external_id="4711"), at(7))
    crm.assign_ticket(AssignTicket(ticket, "赵敏"), at(7.1))
    crm.change_ticket_status(ChangeTicketStatus(ticket, "waiting_customer"), at(7.2))
    crm.record_customer_reply(RecordCustomerReply(ticket, "已提供截图"), at(7.3))
    crm.resolve_ticket(ResolveTicket(ticket, "已远程协助处理"), at(8))
    crm.rate_ticket(RateTicket(ticket, 5, "服务很及时"), at(9))
    crm.reopen_ticket(ReopenTicket(ticket, "问题复现"), at(9.5))
    crm.resolve_ticket(ResolveTicket(ticket, "已修复"), at(9.8))
    crm.close_ticket(CloseTicket(ticket), at(10))

    crm.disqualify_lead(DisqualifyLead(crm.capture_lead(CaptureLead("刘洋", "华北", "制造", "展会邀约", source="hubspot",
                                                                    external_id="1001"), at(11)),
                                       "无预算"), at(12))
    crm.close_campaign(CloseCampaign(campaign), at(13))
    forgotten = crm.register_customer(RegisterCustomer("陈静", "", company="上海某公司",  # region etc. unknown
                                                       email="cj@example.cn", source="salesforce",
                                                       external_id="001Dn00000XyZ12"), at(14))
    crm.open_deal(OpenDeal(forgotten, "门店系统", "5000", source="salesforce", external_id="006Dn00000AbCdE"),
                  at(14.5))
    crm.save_new(SegmentChange.record(TierChange(forgotten, "", "potential", at(14).occurred_at),
                                      at(14.6, "crm segments")))
    crm.forget_customer(ForgetCustomer(forgotten), at(15))
    crm.save_new(SegmentChange.record(TierChange(customer, "", "potential", at(4).occurred_at), at(15.05, "crm segments")),
                 SegmentChange.record(TierChange(forgotten, "potential", "", at(15).occurred_at, sequence=1),
                                      at(15.05, "crm segments")))
    crm.record_exchange_rate(RecordExchangeRate("USD", "7.1234", date(2026, 3, 1), source="人民银行中间价"), at(16))
    crm.record_exchange_rate(RecordExchangeRate("USD", "7.1240", date(2026, 3, 1), source="人民银行中间价（更正）"),
                             at(16.1))
