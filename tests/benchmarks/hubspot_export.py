"""A synthetic HubSpot export for the CSV import benchmark: companies.csv, deals.csv and their mapping.

Shaped as HubSpot exports deals (the columns of tests/fixtures/imports/hubspot/deals.csv: "Record ID",
"Deal Name", "Deal Stage", "Amount", `Date entered "<Stage> (Sales Pipeline)"` per stage, …): one row per
opportunity, every deal naming one of the companies. Deals start at random instants over two years and
walk the default Sales Pipeline with a few days between stages; like a real funnel, fewer reach each later
stage, some skip one, and most are closed (won more often the further they got). Amounts come with and
without thousands separators or empty, in three currencies; some names and owners are Chinese. Seeded:
the same `opportunities` give the same files.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

SEED = 12
START = datetime(2023, 1, 1)
SPREAD_DAYS = 730
DEALS_PER_COMPANY = 10  # 100,000 opportunities → 10,000 companies
STAGES = ("Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In",
          "Contract Sent")
KEYS = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin", "contractsent")
WON, LOST = "Closed Won", "Closed Lost"
GO_ON = 0.7  # chance to reach the next open stage: 1 stage 30%, 2 stages 21%, …, all 5 ≈ 24%
SKIP = 0.1  # chance that a deal skips one stage it passes (HubSpot lets a rep drag a deal past it)
OPEN = 0.15  # deals still open at the end of the export
DATE_FORMAT = "%Y-%m-%d %H:%M"  # HubSpot's export format, local time without a zone
OWNERS = [f"Agent {n:02d}" for n in range(30)] + ["王伟", "李娜", "张敏", "刘洋", "陈静"]  # 35, as in the issue
SOURCES = ("ORGANIC_SEARCH", "PAID_SEARCH", "REFERRALS", "SOCIAL_MEDIA", "EMAIL_MARKETING", "OFFLINE", "DIRECT_TRAFFIC")
INDUSTRIES = ("COMPUTER_SOFTWARE", "MACHINERY", "RETAIL", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "")
COUNTRIES = ("United States", "Germany", "China", "Brazil", "")
CURRENCIES = (("USD", 0.7), ("EUR", 0.2), ("CNY", 0.1))
LOSS_REASONS = ("Budget", "Timing", "Competitor", "No decision", "")  # "" → the mapping's default
ENTERED = 'Date entered "{stage} (Sales Pipeline)"'
DEAL_COLUMNS = ["Record ID", "Deal Name", "Pipeline", "Deal Stage", "Amount", "Deal currency code", "Create Date",
                "Close Date", "Deal owner", "Associated Company IDs", "Closed Lost Reason",
                *(ENTERED.format(stage=stage) for stage in (*STAGES, WON, LOST))]
COMPANY_COLUMNS = ["Record ID", "Company name", "Industry", "Country/Region", "Original Source", "Create Date"]


class Export(NamedTuple):
    """What `write_export` wrote: the mapping to import (it names the CSV files beside it) and the sizes."""

    mapping: Path
    opportunities: int
    companies: int
    size: int  # bytes of both CSV files


def write_export(folder: Path, opportunities: int, seed: int = SEED) -> Export:
    """Write companies.csv, deals.csv and mapping.toml into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    companies = max(1, opportunities // DEALS_PER_COMPANY)
    with (folder / "companies.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COMPANY_COLUMNS)
        writer.writerows(_company(rng, n) for n in range(companies))
    with (folder / "deals.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(DEAL_COLUMNS)
        writer.writerows(_deal(rng, n, companies) for n in range(opportunities))
    (folder / "mapping.toml").write_text(MAPPING, encoding="utf-8")
    size = sum((folder / name).stat().st_size for name in ("companies.csv", "deals.csv"))
    return Export(folder / "mapping.toml", opportunities, companies, size)


def _company(rng: random.Random, n: int) -> list[str]:
    created = START - timedelta(days=rng.uniform(1, 365))  # every company exists before its first deal
    name = f"客户{n}有限公司" if n % 5 == 0 else f"Company {n} Inc."
    return [str(5_000_000_000 + n), name, rng.choice(INDUSTRIES), rng.choice(COUNTRIES), rng.choice(SOURCES),
            created.strftime(DATE_FORMAT)]


def _amount(rng: random.Random) -> str:
    value = rng.randrange(500, 500_000)
    form = rng.random()
    return "" if form < 0.05 else f"{value:,}" if form < 0.35 else str(value)


def _path(rng: random.Random) -> list[int]:
    """Indexes of the open stages a deal entered, in order."""
    reached = 1
    while reached < len(STAGES) and rng.random() < GO_ON:
        reached += 1
    path = list(range(reached))
    if reached > 2 and rng.random() < SKIP:
        path.pop(rng.randrange(1, reached - 1))
    return path


def _deal(rng: random.Random, n: int, companies: int) -> list[str]:
    created = START + timedelta(minutes=rng.randrange(SPREAD_DAYS * 24 * 60))
    path, at = _path(rng), created
    entered = [""] * (len(STAGES) + 2)
    for index in path:
        entered[index] = at.strftime(DATE_FORMAT)
        at += timedelta(minutes=rng.randrange(12 * 60, 20 * 24 * 60))  # ½ to 20 days in a stage
    fate = rng.random()
    won = fate >= OPEN and rng.random() < (path[-1] + 1) / (len(STAGES) + 1)
    stage = STAGES[path[-1]] if fate < OPEN else WON if won else LOST
    if fate >= OPEN:
        entered[len(STAGES) + (0 if won else 1)] = at.strftime(DATE_FORMAT)
    reason = rng.choice(LOSS_REASONS) if stage == LOST else ""
    currency = rng.choices([c for c, _ in CURRENCIES], [w for _, w in CURRENCIES])[0]
    name = f"项目 {n}" if n % 7 == 0 else f"Deal {n}"
    return [str(9_000_000_000 + n), name, "Sales Pipeline", stage, _amount(rng), currency,
            created.strftime(DATE_FORMAT), at.strftime(DATE_FORMAT), rng.choice(OWNERS),
            str(5_000_000_000 + rng.randrange(companies)), reason, *entered]


MAPPING = f"""# The synthetic HubSpot export of tests/benchmarks/hubspot_export.py (as tests/fixtures/imports/hubspot/).
source = "hubspot"
timezone = "Europe/Berlin"
currency = "EUR"
actor = "import:hubspot"
date_formats = ["{DATE_FORMAT}"]

[defaults]
channel = "web"
owner = "unassigned"

[[pipelines]]
key = "hs_sales"
name = "HubSpot Sales Pipeline"
stages = [{", ".join(f'{{ key = "{key}", label = "{label}" }}' for key, label in zip(KEYS, STAGES))}]

[stages.hs_sales]
"{WON}" = "won"
"{LOST}" = "lost"

[values.channel]
"ORGANIC_SEARCH" = "search_ads"
"PAID_SEARCH" = "search_ads"
"REFERRALS" = "referral"
"SOCIAL_MEDIA" = "social"
"EMAIL_MARKETING" = "email"
"OFFLINE" = "event"
"DIRECT_TRAFFIC" = "web"

[[files]]
path = "companies.csv"
shape = "accounts"
[files.columns]
id = "Record ID"
name = "Company name"
industry = "Industry"
region = "Country/Region"
channel = "Original Source"
created = "Create Date"

[[files]]
path = "deals.csv"
shape = "opportunities"
pipeline = "hs_sales"
stage_entered_pattern = '{ENTERED}'
[files.columns]
id = "Record ID"
name = "Deal Name"
account = "Associated Company IDs"
stage = "Deal Stage"
amount = "Amount"
currency = "Deal currency code"
created = "Create Date"
close_date = "Close Date"
owner = "Deal owner"
loss_reason = "Closed Lost Reason"
"""
