"""A customer's timeline as of an instant: the incremental read model and a replay must agree."""

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from uuid import UUID, uuid4

import orjson
import pytest
import typer
from typer.testing import CliRunner

from domain.campaign import Campaign
from domain.lead import Lead
from gateways.cli.customer_commands import customer_app
from projections.timeline import Timeline, TimelineQueries, TimelineReadModel, UnknownCustomer
from services.application import CrmApplication
from services.commands import (AddTag, AssignLead, CaptureLead, ChangeConsent, ChangeContactDetails, ChangeStage,
                               ContactLead, ConvertLead, ForgetCustomer, LaunchCampaign, LogTouch, OpenTicket,
                               PlanCampaign, QualifyLead, RateTicket, RecordResponse, RegisterCustomer, ResolveTicket,
                               WinDeal)
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.projection_runtime.replay import replay_until
from services.settings import database_from_url
from tests.conftest import at, catch_up

Query = Callable[..., Timeline]
UNKNOWN = UUID("00000000-0000-4000-8000-000000000000")


def record(crm: CrmApplication) -> dict[str, UUID]:
    """Lead L (from campaign C) converts into customer X on day 4; X then buys, files a ticket and is forgotten.

    Y is another customer and L2 a lead that never converts. Responses are on their respondent's stream,
    but one: a response to campaign C2 naming L, dated day 0.5, recorded last on C2's stream, as a log from
    before home partitions holds it (`Campaign.ResponseRecorded`, the same fact).
    """
    c = crm.plan_campaign(PlanCampaign("春季新品发布会", "event", "10000"), at(-10, "市场部"))
    crm.launch_campaign(LaunchCampaign(c), at(-9, "市场部"))
    lead = crm.capture_lead(CaptureLead("王五", "华北", "金融", "event", company="某公司", campaign_id=c), at(0, "web-form"))
    crm.record_response(RecordResponse(c, "click", lead_id=lead), at(0, "web-form"))
    y = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "web"), at(0))
    other_lead = crm.capture_lead(CaptureLead("赵六", "西南", "医疗", "web"), at(0, "web-form"))
    crm.record_response(RecordResponse(c, "click", lead_id=other_lead), at(0, "web-form"))
    crm.assign_lead(AssignLead(lead, "陈杰", "industry"), at(1, "lead-router"))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(2, "陈杰"))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(3, "陈杰"))
    x, deal = crm.convert_lead(ConvertLead(lead, "采购", "1000", "CNY"), at(4, "陈杰"))
    crm.log_touch(LogTouch(x, "visit", "outbound", "上门演示\n第二行"), at(5, "陈杰"))
    crm.add_tag(AddTag(x, "VIP"), at(5, "陈杰"))  # same instant as the touch: log order decides
    crm.log_touch(LogTouch(y, "phone", "inbound", "咨询价格"), at(5))
    crm.change_consent(ChangeConsent(x, True), at(6, "陈杰"))
    crm.change_contact_details(ChangeContactDetails(x, "wang@example.com", "13800000000"), at(6.5, "陈杰"))
    crm.change_stage(ChangeStage(deal, "first_contact", "客户确认需求"), at(7, "陈杰"))
    crm.win_deal(WinDeal(deal, "回款计划已确认"), at(8, "陈杰"))
    ticket = crm.open_ticket(OpenTicket(x, "系统登录失败", "phone", priority="high"), at(9, "客户"))
    crm.resolve_ticket(ResolveTicket(ticket, "已远程处理"), at(10, "赵磊"))
    crm.rate_ticket(RateTicket(ticket, 5, "很好"), at(10, "客户"))
    crm.record_response(RecordResponse(c, "reply", x), at(11, "市场部"))
    crm.forget_customer(ForgetCustomer(x), at(12, "dpo"))
    late = crm.plan_campaign(PlanCampaign("老客户推荐计划", "referral", "5000"), at(-3, "市场部"))
    crm.launch_campaign(LaunchCampaign(late), at(-2, "市场部"))
    old_style = crm.get(Campaign, late)
    old_style.record_response("registration", at(0.5, "web-form"), lead_id=lead)
    crm.save_new(old_style)
    return {"x": x, "y": y, "lead": lead, "deal": deal, "ticket": ticket, "c": c, "late": late}


@pytest.fixture
def history(crm: CrmApplication) -> dict[str, UUID]:
    return record(crm)


def _built(crm: CrmApplication, limit: int = 5000) -> ReadModelStore:
    store = ReadModelStore(database_from_url("memory://"))
    Projector(crm, store, [TimelineReadModel()]).catch_up(limit=limit)
    return store


@pytest.fixture(params=["read model", "replay"])
def timeline(request: pytest.FixtureRequest, crm: CrmApplication, history: dict[str, UUID]) -> Iterator[Query]:
    """timeline(customer, as_of, ...) from the incremental read model or from a replay up to as_of."""
    if request.param == "replay":
        yield lambda customer, as_of, **page: TimelineQueries(
            replay_until(crm, [TimelineReadModel()], as_of), crm.keys.unseal_marks).timeline(customer, as_of, **page)
        return
    store = _built(crm)
    yield TimelineQueries(store, crm.keys.unseal_marks).timeline
    store.close()


def when(days: float) -> datetime:
    return at(days).occurred_at


def _kinds(result: Timeline) -> list[str]:
    return [entry.kind for entry in result.entries]


def test_every_event_of_the_customer_in_business_time_order(timeline: Query, history: dict[str, UUID]) -> None:
    # Equal instants by when the log recorded them: a conversion makes the customer and the deal, then the
    # lead's "converted" event that names them (no log-order counter: partitioned projectors lack one).
    result = timeline(history["x"], when(30))

    assert _kinds(result) == [
        "Lead.Captured", "Lead.RespondedToCampaign", "Campaign.ResponseRecorded", "Lead.Assigned", "Lead.Contacted",
        "Lead.Qualified", "Customer.Registered", "Deal.Opened", "Lead.Converted", "Customer.TouchLogged",
        "Customer.TagAdded", "Customer.ConsentChanged", "Customer.ContactDetailsChanged", "Deal.StageChanged",
        "Deal.Won", "Ticket.Opened", "Ticket.Resolved", "Ticket.SatisfactionRated", "Customer.RespondedToCampaign",
        "Customer.Forgotten"]
    assert result.total == 20


def test_an_event_recorded_late_takes_its_place_in_business_time(timeline: Query, history: dict[str, UUID]) -> None:
    entry = timeline(history["x"], when(30)).entries[2]

    assert (entry.occurred_at, entry.subject_id) == (when(0.5), history["late"])
    assert entry.summary == "campaign 老客户推荐计划: registration"


def test_entries_say_who_did_what_to_which_subject(timeline: Query, history: dict[str, UUID]) -> None:
    entries = {entry.kind: entry for entry in timeline(history["x"], when(30)).entries}

    stage = entries["Deal.StageChanged"]
    assert (stage.actor, stage.subject_id) == ("陈杰", history["deal"])
    # X was forgotten on day 12: the free text of X's deals and tickets went with X's personal data
    assert stage.summary == "(forgotten): lead → first_contact ((forgotten))"
    assert entries["Deal.Won"].summary == "(forgotten): first_contact → won ((forgotten))"
    assert entries["Customer.TouchLogged"].summary == "visit outbound: (forgotten)"
    assert entries["Lead.Assigned"].summary == "lead assigned to 陈杰 (industry)"
    assert (entries["Ticket.SatisfactionRated"].summary, entries["Ticket.SatisfactionRated"].subject_id) == (
        "(forgotten): rated 5/5 ((forgotten))", history["ticket"])
    assert entries["Customer.Forgotten"].summary == "forgotten"


def test_as_of_an_instant_only_earlier_entries_show(timeline: Query, history: dict[str, UUID]) -> None:
    result = timeline(history["x"], when(6))

    assert result.total == 12
    assert _kinds(result)[-2:] == ["Customer.TagAdded", "Customer.ConsentChanged"]


def test_before_its_lead_converted_the_customer_is_unknown(timeline: Query, history: dict[str, UUID]) -> None:
    with pytest.raises(UnknownCustomer, match=f"no customer with id {history['x']} as of 2026-03-04T21:00:00"):
        timeline(history["x"], when(3.5))


def test_other_customers_and_unconverted_leads_stay_out(timeline: Query, history: dict[str, UUID]) -> None:
    result = timeline(history["y"], when(30))

    assert [(e.kind, e.summary) for e in result.entries] == [
        ("Customer.Registered", "registered 李四 · 华南 · 零售 · via web"),
        ("Customer.TouchLogged", "phone inbound: 咨询价格")]


def test_a_lead_converted_into_an_existing_customer_joins_its_timeline_from_the_conversion(
        crm: CrmApplication) -> None:
    z = crm.register_customer(RegisterCustomer("孙七", "华中", "教育", "referral"), at(0))
    lead = crm.capture_lead(CaptureLead("孙七", "华中", "教育", "web"), at(1, "web-form"))
    crm.assign_lead(AssignLead(lead, "王伟", "manual"), at(1))
    crm.contact_lead(ContactLead(lead, "email", ""), at(2))
    crm.qualify_lead(QualifyLead(lead, ""), at(3))
    converted = crm.get(Lead, lead)
    converted.convert(z, uuid4(), at(5))
    crm.save_new(converted)
    built = TimelineQueries(_built(crm), crm.keys.unseal_marks)

    for as_of, kinds in ((4, ["Customer.Registered"]),
                         (6, ["Customer.Registered", "Lead.Captured", "Lead.Assigned", "Lead.Contacted",
                              "Lead.Qualified", "Lead.Converted"])):
        replayed = TimelineQueries(replay_until(crm, [TimelineReadModel()], when(as_of)), crm.keys.unseal_marks)
        assert _kinds(built.timeline(z, when(as_of))) == _kinds(replayed.timeline(z, when(as_of))) == kinds


def test_pages_of_the_timeline(timeline: Query, history: dict[str, UUID]) -> None:
    page = timeline(history["x"], when(30), limit=3, offset=9)

    assert _kinds(page) == ["Customer.TouchLogged", "Customer.TagAdded", "Customer.ConsentChanged"]
    assert (page.total, page.offset) == (20, 9)


def test_without_an_instant_the_whole_timeline_shows(crm: CrmApplication, history: dict[str, UUID]) -> None:
    result = TimelineQueries(_built(crm), crm.keys.unseal_marks).timeline(history["x"])

    assert (result.total, result.as_of, result.entries[-1].kind) == (20, None, "Customer.Forgotten")


def test_an_unknown_customer_is_refused(crm: CrmApplication, history: dict[str, UUID]) -> None:
    with pytest.raises(UnknownCustomer, match=f"^no customer with id {UNKNOWN}$"):
        TimelineQueries(_built(crm), crm.keys.unseal_marks).timeline(UNKNOWN)


@pytest.mark.parametrize("days", [-1, 0, 0.5, 4, 5, 10, 12, 30])
def test_small_batches_give_the_same_timelines_as_a_replay(crm: CrmApplication, history: dict[str, UUID],
                                                           days: float) -> None:
    incremental = TimelineQueries(_built(crm, limit=3), crm.keys.unseal_marks)

    assert incremental.summary(when(days)) == TimelineQueries(
        replay_until(crm, [TimelineReadModel()], when(days)), crm.keys.unseal_marks).summary(when(days))


# --- `crm customer timeline` ------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, UUID]:
    """The history above in an SQLite log that CRM_DATABASE_URL points to."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    ids = record(crm)
    crm.close()
    catch_up(url)
    return ids


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(customer_app, name="customer")
    return app


def test_cli_prints_the_timeline_as_json(recorded: dict[str, UUID]) -> None:
    result = runner.invoke(_cli(), ["customer", "timeline", str(recorded["x"]), "--as-of", "2026-03-07T09:00",
                                    "--limit", "2", "--json"])

    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    assert (data["total"], data["as_of"]) == (12, "2026-03-07T09:00:00+00:00")
    assert [e["kind"] for e in data["entries"]] == ["Lead.Captured", "Lead.RespondedToCampaign"]
    assert data["entries"][0]["summary"] == "lead captured: (forgotten) ((forgotten)) via event"  # X, its lead too


def test_cli_prints_a_table_of_entries(recorded: dict[str, UUID]) -> None:
    result = runner.invoke(_cli(), ["customer", "timeline", str(recorded["x"]), "--offset", "13", "--limit", "1"])

    assert result.exit_code == 0, result.output
    assert "entries 14–14 of 20" in result.output
    assert "(forgotten): lead → first_contact ((forgotten))" in result.output  # X's deal, once X was forgotten


def test_cli_refuses_an_unknown_customer(recorded: dict[str, UUID]) -> None:
    result = runner.invoke(_cli(), ["customer", "timeline", str(UNKNOWN)])

    assert result.exit_code == 1
    assert f"no customer with id {UNKNOWN} as of" in result.output


def test_cli_prints_a_page_of_entries_as_csv(recorded: dict[str, UUID]) -> None:
    result = runner.invoke(_cli(), ["customer", "timeline", str(recorded["x"]), "--as-of", "2026-03-07T09:00",
                                    "--limit", "2", "--csv"])

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["kind"] for row in rows] == ["Lead.Captured", "Lead.RespondedToCampaign"]
