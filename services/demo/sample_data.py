"""A seeded, realistic CRM history, generated through the domain and saved in batches.

Campaigns run and spend; each brings leads that are assigned, contacted, qualified or dropped;
qualified leads become customers with deals that move through the sales pipeline with realistic
drop-off and dwell times; won customers open service tickets and rate them; some buy again.

Stories are generators that yield how many days to wait; a heap runs them in business-time order,
so every aggregate sees its events in time order, as in real life.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from domain.assignment import AssignmentPolicy
from domain.base import CrmAggregate, Meta
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.partitions import in_partition, partition_of
from domain.pipeline import Pipeline
from domain.ticket import Ticket
from services.application import CrmApplication

Story = Generator[float, None, None]  # yields days to wait before the next step

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_NAMES = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "建华", "志强"]
COMPANY_CITIES = ["上海", "北京", "深圳", "杭州", "成都", "武汉", "南京", "广州", "苏州", "西安"]
COMPANY_WORDS = ["华信", "瑞丰", "恒通", "新创", "博远", "天成", "智联", "鼎盛", "汇金", "云启", "海纳", "中科"]
COMPANY_KINDS = ["科技有限公司", "制造有限公司", "贸易有限公司", "信息技术有限公司", "医疗器械有限公司", "教育咨询有限公司"]
REGIONS = ["华东", "华南", "华北", "华中", "西南", "西北"]
INDUSTRIES = ["制造业", "零售", "金融", "医疗", "教育", "互联网"]
OWNERS = ("王伟", "李娜", "张敏", "刘洋", "陈杰", "杨静")
SERVICE_AGENTS = ("赵磊", "吴艳", "周涛")
POLICY = AssignmentPolicy(
    by_industry={"金融": "陈杰", "医疗": "杨静"},
    by_region={"华南": "刘洋", "西南": "张敏"},
    round_robin=("王伟", "李娜", "张敏", "刘洋"),
)
CAMPAIGNS = [  # name, channel, weekly budget (CNY), weeks
    ("春季新品发布会", "event", 60000, 6),
    ("工业互联网白皮书下载", "web", 15000, 16),
    ("百度搜索推广", "search_ads", 30000, 40),
    ("微信公众号内容营销", "social", 12000, 52),
    ("老客户推荐计划", "referral", 8000, 30),
    ("行业展会（上海）", "event", 90000, 3),
    ("EDM 邮件培育", "email", 5000, 26),
    ("渠道伙伴联合推广", "partner", 20000, 20),
    ("电话外呼季度冲刺", "phone", 25000, 10),
    ("抖音短视频投放", "social", 40000, 12),
]
# Chance that a deal moves from each open stage to the next (else it is lost), and mean days there.
ADVANCE = {"lead": 0.82, "first_contact": 0.74, "needs_analysis": 0.68, "proposal": 0.62,
           "negotiation": 0.7, "contract_signed": 0.96}
DWELL_DAYS = {"lead": 3, "first_contact": 6, "needs_analysis": 11, "proposal": 14, "negotiation": 12,
              "contract_signed": 6}
LOSS_REASONS = ["价格太高 / price too high", "选择了竞争对手 / chose a competitor", "预算取消 / budget cut",
                "客户无回应 / no response", "需求变化 / needs changed"]
COMPETITORS = ["用友", "金蝶", "Salesforce", "纷享销客"]
DISQUALIFY_REASONS = ["非目标客户 / not our target", "无预算 / no budget", "联系方式无效 / invalid contact"]
TICKET_SUBJECTS = ["系统登录失败", "发票开具问题", "数据导出报错", "需要培训支持", "设备安装预约", "合同条款咨询",
                   "接口对接异常", "续费流程咨询"]


@dataclass(frozen=True)
class DemoSettings:
    seed: int = 7
    leads: int = 10000
    days: int = 730
    until: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(hour=0, minute=0, second=0,
                                                                                        microsecond=0))

    @property
    def start(self) -> datetime:
        return self.until - timedelta(days=self.days)


class DemoHistory:
    """Runs the stories and saves what they record, in batches of one transaction each."""

    BATCH_STEPS = 400

    def __init__(self, app: CrmApplication, settings: DemoSettings,
                 on_progress: Callable[[float], None] = lambda _: None) -> None:
        self.app = app
        self.settings = settings
        self.on_progress = on_progress
        self.rng = random.Random(settings.seed)
        self.now = settings.start
        self._queue: list[tuple[datetime, int, Story]] = []
        self._sequence = itertools.count()
        self._touched: dict[UUID, CrmAggregate] = {}
        self._round_robin_turn = 0
        self.sales: Pipeline = app.pipeline("sales")

    # --- running ------------------------------------------------------------------------------

    def run(self) -> None:
        runs = [(campaign, launch) for campaign in CAMPAIGNS for launch in self._campaign_launches(campaign[3])]
        total_weeks = sum(campaign[3] for campaign, _ in runs)
        for (name, channel, weekly_budget, weeks), launch in runs:
            leads = self.settings.leads * weeks / total_weeks
            self._schedule(launch - 7, self._campaign_story(name, channel, weekly_budget, weeks, leads))
        steps = 0
        while self._queue:
            at, _, story = heapq.heappop(self._queue)
            if at > self.settings.until:
                break
            self.now = at
            self._advance(story)
            steps += 1
            if steps % self.BATCH_STEPS == 0:
                self._flush()
                self.on_progress((at - self.settings.start) / (self.settings.until - self.settings.start))
        self._flush()
        self.on_progress(1.0)

    def _campaign_launches(self, weeks: int) -> Iterator[float]:
        """Launch days (from the start) of a campaign's runs: it is repeated across the period."""
        cycle = max(weeks * 7 + 30, 120)
        day = 10.0 + (weeks * 13) % 40
        while day < self.settings.days:
            yield day
            day += cycle

    def _schedule(self, day: float, story: Story) -> None:
        at = self.settings.start + timedelta(days=max(day, 0.0))
        heapq.heappush(self._queue, (at, next(self._sequence), story))

    def _spawn(self, delay_days: float, story: Story) -> None:
        at = self.now + timedelta(days=delay_days)
        heapq.heappush(self._queue, (at, next(self._sequence), story))

    def _advance(self, story: Story) -> None:
        try:
            self._spawn(next(story), story)
        except StopIteration:
            pass

    def _flush(self) -> None:
        if self._touched:
            self.app.save_new(*self._touched.values())
            self._touched.clear()

    def _touch(self, aggregate: CrmAggregate) -> None:
        self._touched[aggregate.id] = aggregate

    # --- helpers ------------------------------------------------------------------------------

    def _id(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def _id_beside(self, parent: UUID) -> UUID:
        """A new id in `parent`'s home partition (a converted customer beside its lead, a deal or a ticket
        beside its customer: `domain.partitions`), drawing as many random bits as `_id`."""
        return in_partition(partition_of(parent), self._id())

    def _meta(self, actor: str = "system") -> Meta:
        return Meta(occurred_at=self.now, actor=actor, correlation_id=self._id().hex)

    def _days(self, mean: float) -> float:
        """A log-normal wait with the given mean: most stays short, a few very long."""
        sigma = 0.75
        return self.rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def _person(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN_NAMES)

    def _company(self) -> str:
        return self.rng.choice(COMPANY_CITIES) + self.rng.choice(COMPANY_WORDS) + self.rng.choice(COMPANY_KINDS)

    # --- stories ------------------------------------------------------------------------------

    def _campaign_story(self, name: str, channel: str, weekly_budget: int, weeks: int, leads: float) -> Story:
        campaign = Campaign.plan(name, channel, weekly_budget * weeks, "CNY", self._meta("市场部"), id=self._id())
        self._touch(campaign)
        yield 7
        campaign.launch(self._meta("市场部"))
        self._touch(campaign)
        for week in range(weeks):
            spend = Decimal(round(weekly_budget * self.rng.uniform(0.8, 1.1)))
            campaign.record_cost(spend, self._meta("财务"), note=f"第{week + 1}周投放")
            self._touch(campaign)
            for _ in range(self._poisson(leads / weeks)):
                self._spawn(self.rng.uniform(0, 6.9), self._lead_story(campaign))
            yield 7
        campaign.close(self._meta("市场部"))
        self._touch(campaign)

    def _poisson(self, mean: float) -> int:
        threshold, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= threshold:
                return k
            k += 1

    def _lead_story(self, campaign: Campaign) -> Story:
        region, industry = self.rng.choice(REGIONS), self.rng.choice(INDUSTRIES)
        lead = Lead.capture(self._person(), self._company(), region, industry, campaign.channel,
                            self._meta("web-form"), contact=f"1{self.rng.randrange(3, 9)}{self.rng.randrange(10**9):09d}",
                            campaign_id=campaign.id, id=self._id())
        lead.respond_to_campaign(campaign, self.rng.choice(["click", "registration", "reply"]), self._meta("web-form"))
        self._touch(lead)
        yield self.rng.uniform(0.05, 1.0)
        owner, rule = POLICY.choose(region, industry, self._round_robin_turn)
        self._round_robin_turn += rule == "round_robin"
        lead.assign(owner, rule, self._meta("lead-router"))
        self._touch(lead)
        if self.rng.random() > 0.85:
            yield 30
            lead.disqualify("客户无回应 / no response", self._meta(owner))
            self._touch(lead)
            return
        yield self.rng.uniform(0.2, 3)
        lead.contact(self.rng.choice(["phone", "email", "social"]), "首次沟通，了解需求", self._meta(owner))
        self._touch(lead)
        yield self._days(4)
        if self.rng.random() > 0.45:
            lead.disqualify(self.rng.choice(DISQUALIFY_REASONS), self._meta(owner))
            self._touch(lead)
            return
        lead.qualify("预算与时间明确", self._meta(owner))
        self._touch(lead)
        yield self.rng.uniform(0.5, 4)
        customer = Customer.register(lead.name, lead.company, lead.region, lead.industry, lead.channel,
                                     self._meta(owner), phone=f"1{self.rng.randrange(3, 9)}{self.rng.randrange(10**9):09d}",
                                     campaign_id=campaign.id, id=self._id_beside(lead.id), partition=partition_of(lead.id))
        deal = Deal.open(self.sales, customer.id, f"{lead.company} 采购项目", self._deal_amount(), "CNY", owner,
                         self._meta(owner), lead_id=lead.id, campaign_id=campaign.id, id=self._id_beside(customer.id),
                         expected_close=self._planned_close("lead"))
        lead.convert(customer.id, deal.id, self._meta(owner))
        for aggregate in (lead, customer, deal):
            self._touch(aggregate)
        yield from self._deal_story(deal, customer)

    def _planned_close(self, stage: str) -> date:
        """The close date a rep would plan: today plus the mean dwell of this stage and every later one (no random
        draw: the demo's history stays the same but for this date, so that its forecast has periods to show)."""
        stages = self.sales.stage_keys
        return (self.now + timedelta(days=sum(DWELL_DAYS[s] for s in stages[stages.index(stage):]))).date()

    def _deal_amount(self) -> Decimal:
        return Decimal(round(self.rng.lognormvariate(math.log(120000), 0.8), -2))

    def _deal_story(self, deal: Deal, customer: Customer) -> Story:
        stages = self.sales.stage_keys
        index = stages.index(deal.stage)
        while True:
            stage = stages[index]
            yield self._days(DWELL_DAYS[stage])
            for _ in range(self.rng.randrange(0, 3)):
                customer.log_touch(self.rng.choice(["phone", "email", "visit", "social"]),
                                   self.rng.choice(["inbound", "outbound"]), f"{self.sales.label(stage)} 跟进",
                                   self._meta(deal.owner))
            self._touch(customer)
            if self.rng.random() > ADVANCE[stage]:
                reason = self.rng.choice(LOSS_REASONS)
                competitor = self.rng.choice(COMPETITORS) if reason == LOSS_REASONS[1] else ""
                deal.lose(reason, self._meta(deal.owner), competitor)
                self._touch(deal)
                if self.rng.random() < 0.04:
                    yield self.rng.uniform(20, 60)
                    deal.reopen(self.sales, "客户重新启动项目 / customer restarted", self._meta(deal.owner))
                    self._touch(deal)
                    continue
                return
            if stage == "proposal" and self.rng.random() < 0.3:
                revised = Decimal(round(float(deal.amount) * self.rng.uniform(0.8, 1.2), -2))
                if revised != deal.amount:
                    deal.change_amount(revised, self._meta(deal.owner))
            if index + 1 == len(stages):
                deal.win(self._meta(deal.owner), note="回款计划已确认")
                self._touch(deal)
                yield from self._after_sales(customer, deal.owner)
                return
            index += 1
            deal.change_stage(self.sales, stages[index], self.rng.choice(["客户确认需求", "方案评审通过", "按计划推进"]),
                              self._meta(deal.owner))
            self._touch(deal)

    def _after_sales(self, customer: Customer, owner: str) -> Story:
        for _ in range(self._poisson(1.3)):
            self._spawn(self.rng.uniform(5, 200), self._ticket_story(customer))
        if self.rng.random() < 0.2:
            yield self.rng.uniform(60, 200)
            deal = Deal.open(self.sales, customer.id, f"{customer.company} 增购", self._deal_amount(), "CNY", owner,
                             self._meta(owner), stage="needs_analysis", id=self._id_beside(customer.id),
                             expected_close=self._planned_close("needs_analysis"))
            self._touch(deal)
            yield from self._deal_story(deal, customer)

    def _ticket_story(self, customer: Customer) -> Story:
        priority = self.rng.choices(["low", "normal", "high", "urgent"], weights=[3, 6, 2, 1])[0]
        ticket = Ticket.open(customer.id, self.rng.choice(TICKET_SUBJECTS), priority,
                             self.rng.choice(["phone", "email", "web"]), self._meta("客户"), id=self._id_beside(customer.id))
        self._touch(ticket)
        yield self.rng.uniform(0.01, 0.3)
        agent = self.rng.choice(SERVICE_AGENTS)
        ticket.assign(agent, self._meta("service-router"))
        ticket.change_status("in_progress", self._meta(agent))
        self._touch(ticket)
        if self.rng.random() < 0.3:
            yield self.rng.uniform(0.1, 1)
            ticket.change_status("waiting_customer", self._meta(agent))
            yield self.rng.uniform(0.2, 2)
            ticket.customer_replied("已补充截图和日志", self._meta("客户"))
            ticket.change_status("in_progress", self._meta(agent))
        yield self._days(1.5)
        ticket.resolve("已远程协助处理", self._meta(agent))
        self._touch(ticket)
        yield self.rng.uniform(0.5, 3)
        if self.rng.random() < 0.7:
            score = self.rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 3, 8, 10])[0]
            ticket.rate(score, "服务很及时" if score >= 4 else "处理太慢", self._meta("客户"))
        if self.rng.random() < 0.06:
            ticket.reopen("问题再次出现", self._meta("客户"))
            self._touch(ticket)
            yield self._days(1)
            ticket.resolve("更换配置后恢复", self._meta(agent))
            yield 1
        ticket.close(self._meta(agent))
        self._touch(ticket)
