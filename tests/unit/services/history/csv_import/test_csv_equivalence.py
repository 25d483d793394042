"""Property: a random history of deals, written as a Salesforce-style OpportunityHistory CSV (rows shuffled)
and imported, gives the same read models as the same history entered by commands through CrmApplication.

Both logs start with the default pipelines defined alike; the commands' path registers the accounts and
sends OpenDeal, ChangeStage, ChangeAmount, WinDeal, LoseDeal and ReopenDeal with the ids the import derives
from the source ids (`external_uuid`), the import's actor and its default loss and reopen reasons. Every read
model's summary and the funnels of tests/support/equivalence.py are compared at several instants.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import Meta
from domain.external_ids import external_uuid
from domain.pipeline import DEFAULT_PIPELINES
from projections.funnel import FunnelQueries
from services.application import CrmApplication
from services.commands import (ChangeAmount, ChangeStage, LoseDeal, OpenDeal, RegisterCustomer, ReopenDeal,
                               WinDeal)
from services.history.csv_import.csv_importer import run_csv_import
from services.history.csv_import.deal_steps import REOPEN_REASON
from services.history.csv_import.mapping import load_mapping
from services.projection_runtime.funnel_as_of import stages_of
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, summaries
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import FILTERS, OWNERS, REGIONS

ACTOR, SOURCE, ACCOUNTS = "import:crm1", "crm1", 3
STAGES = [key for key, _ in DEFAULT_PIPELINES["sales"][1]]
MAPPING = f"""
source = "{SOURCE}"
timezone = "UTC"
currency = "CNY"
actor = "{ACTOR}"
[defaults]
channel = "web"
industry = "制造"
[[pipelines]]
key = "sales"
name = "Sales"
stages = [{", ".join(f'{{ key = "{key}", label = "{key}" }}' for key in STAGES)}]
[[files]]
path = "accounts.csv"
shape = "accounts"
columns = {{ id = "Id", name = "Name", region = "Region", created = "CreatedDate" }}
[[files]]
path = "history.csv"
shape = "stage_history"
columns = {{ id = "OpportunityId", stage = "StageName", amount = "Amount", created = "CreatedDate", account = "AccountId", name = "Name", owner = "Owner" }}
"""

steps = st.lists(st.tuples(st.sampled_from(("stage", "stage", "won", "lost", "amount", "reopen")),
                           st.integers(0, len(STAGES) - 1), st.integers(1, 24 * 20)), max_size=8)
deals = st.lists(st.tuples(st.integers(0, ACCOUNTS - 1), st.integers(0, 90), st.integers(0, len(STAGES) - 1),
                           st.integers(0, 1), st.integers(0, 10_000), steps), min_size=1, max_size=10)
as_of_days = st.lists(st.integers(0, 200), min_size=1, max_size=3)


def concrete(start: datetime, stage: str, amount: Decimal, raw: list[tuple[str, int, int]]
             ) -> list[tuple[str, str, Decimal, datetime]]:
    """The valid steps of a random list: (kind, stage or outcome, amount after it, instant)."""
    status, at, out = "open", start, []
    for kind, index, hours in raw:
        target, at = STAGES[index], at + timedelta(hours=hours)
        if status == "open" and kind == "stage" and target != stage:
            stage = target
        elif status == "open" and kind in ("won", "lost"):
            status = target = kind
        elif status == "open" and kind == "amount":
            amount, target = amount + 100 * (index + 1), stage
        elif status != "open" and kind == "reopen":
            status, stage = "open", target
        else:
            continue
        out.append((kind, target, amount, at))
    return out


def _by_commands(app: CrmApplication, history: list[dict[str, Any]]) -> None:
    for account in range(ACCOUNTS):
        app.register_customer(RegisterCustomer(f"客户{account}", region=REGIONS[account % 2], industry="制造",
                                               channel="web", company=f"客户{account}",
                                               source=SOURCE, external_id=f"A{account}"),
                              Meta(occurred_at=T0 - timedelta(days=10), actor=ACTOR))
    for deal in history:
        deal_id = app.open_deal(OpenDeal(external_uuid("customer", SOURCE, deal["account"]), deal["id"], deal["amount"],
                               currency="CNY", owner=deal["owner"], stage=deal["stage"], source=SOURCE,
                               external_id=deal["id"]),
                                Meta(occurred_at=deal["start"], actor=ACTOR))
        for kind, target, amount, at in deal["steps"]:
            meta = Meta(occurred_at=at, actor=ACTOR)
            command = {"stage": lambda: ChangeStage(deal_id, target), "won": lambda: WinDeal(deal_id),
                       "lost": lambda: LoseDeal(deal_id, "unknown"), "amount": lambda: ChangeAmount(deal_id, amount),
                       "reopen": lambda: ReopenDeal(deal_id, REOPEN_REASON, target)}[kind]()
            app.handle(command, meta)


def _as_csv(folder: Path, history: list[dict[str, Any]], order: list[int]) -> None:
    with (folder / "accounts.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Id", "Name", "Region", "CreatedDate"])
        for account in range(ACCOUNTS):
            writer.writerow([f"A{account}", f"客户{account}", REGIONS[account % 2],
                             (T0 - timedelta(days=10)).isoformat()])
    rows = []
    for deal in history:
        common = [deal["id"], deal["account"], deal["owner"]]
        rows.append([*common, deal["stage"], deal["amount"], deal["start"].isoformat()])
        rows += [[*common, target, amount, at.isoformat()] for _, target, amount, at in deal["steps"]]
    with (folder / "history.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["OpportunityId", "AccountId", "Owner", "StageName", "Amount", "CreatedDate", "Name"])
        for index in order:
            writer.writerow([*rows[index], rows[index][0]])


def _answers(app: CrmApplication, store: ReadModelStore, instants: list[datetime]) -> dict[Any, Any]:
    Projector(app, store, [model() for model in READ_MODELS.values()]).catch_up()
    queries = FunnelQueries(store)
    return {as_of: (summaries(app, store, as_of),
                    {f: queries.report("sales", stages_of(app, "sales"), as_of, f, stuck_days=3) for f in FILTERS})
            for as_of in instants}


def _logs(folder: Path) -> tuple[CrmApplication, CrmApplication]:
    apps = tuple(CrmApplication(database_from_url(f"sqlite:///{folder / name}")) for name in ("cmd.db", "csv.db"))
    for app in apps:
        app.ensure_default_pipelines(Meta(occurred_at=T0 - timedelta(days=30), actor="setup"))
    return apps  # type: ignore[return-value]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=deals, days=as_of_days, data=st.data())
def test_a_history_imported_from_csv_reads_as_the_same_history_entered_by_commands(raw, days, data) -> None:
    history = []
    for number, (account, day, stage, owner, amount, raw_steps) in enumerate(raw):
        start = T0 + timedelta(days=day, minutes=number)
        history.append({"id": f"006X{number:04d}", "account": f"A{account}", "start": start, "stage": STAGES[stage],
                        "owner": OWNERS[owner], "amount": Decimal(amount),
                        "steps": concrete(start, STAGES[stage], Decimal(amount), raw_steps)})
    rows = sum(1 + len(deal["steps"]) for deal in history)
    order = data.draw(st.permutations(range(rows)))
    instants = [T0 + timedelta(days=day, hours=day % 7) for day in days]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        by_commands, by_csv = _logs(folder)
        _by_commands(by_commands, history)
        _as_csv(folder, history, order)
        (folder / "mapping.toml").write_text(MAPPING, encoding="utf-8")
        report = run_csv_import(by_csv, load_mapping(folder / "mapping.toml"))
        assert report.refused == [] and report.written == by_commands.event_count() - 3  # the pipelines
        stores = [ReadModelStore(app.database) for app in (by_commands, by_csv)]
        try:
            assert _answers(by_csv, stores[1], instants) == _answers(by_commands, stores[0], instants)
        finally:
            for store in stores:
                store.close()
            by_commands.close()
            by_csv.close()
