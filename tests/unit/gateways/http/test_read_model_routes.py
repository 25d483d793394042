"""Queries on the segments, tickets, campaigns and timeline read models: as of an instant, pages, 404/422, roles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateways.http.app import create_app
from gateways.http.responses import dumps
from projections.campaigns import CampaignQueries
from projections.segments import SegmentQueries
from projections.tickets import TicketQueries
from projections.tickets.ticket_facts_report import FactsTicketQueries
from projections.timeline import TimelineQueries
from services.application import CrmApplication
from services.commands import (ChangeTicketStatus, LaunchCampaign, OpenDeal, OpenTicket, PlanCampaign, RateTicket,
                               RecordCost, RegisterCustomer, ResolveTicket, WinDeal)
from services.settings import database_from_url
from tests.conftest import T0, at
from tests.unit.gateways.http.conftest import auth, project, registry

ANALYST = auth("analyst")
HOUR = 1 / 24


def day(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def build(crm: CrmApplication) -> dict[str, UUID]:
    """Customers A–D registered on day 0, E on day 5; CNY deals: A 300,000 won day 10 (campaign 春季展会),
    B 60,000 won day 12, C 1,000 still open, E 100,000 won day 6; D nothing.
    Campaigns: 春季展会 (event, planned day 0, cost 20,000), 双十一邮件 (email, planned day 2).
    Tickets: B urgent opened day 13, untouched; A normal opened day 14, in progress +2 h, resolved +10 h,
    rated 5 on day 15; C high opened day 15, untouched."""
    ids = {name: crm.register_customer(RegisterCustomer(f"客户{name}", "华东", "制造业", "web", company="华为"), at(registered))
           for name, registered in (("A", 0), ("B", 0), ("C", 0), ("D", 0), ("E", 5))}
    ids["fair"] = crm.plan_campaign(PlanCampaign("春季展会", "event", "50000"), at(0))
    ids["mail"] = crm.plan_campaign(PlanCampaign("双十一邮件", "email", "10000"), at(2))
    crm.launch_campaign(LaunchCampaign(ids["fair"]), at(1))
    crm.record_cost(RecordCost(ids["fair"], "20000"), at(2))
    deals = {name: crm.open_deal(OpenDeal(ids[name], "增购", amount, owner="李娜", **extra), at(opened))
             for name, amount, opened, extra in (("A", "300000", 1, {"campaign_id": ids["fair"]}),
                                                 ("B", "60000", 2, {}), ("C", "1000", 3, {}), ("E", "100000", 5, {}))}
    for name, won in (("A", 10), ("B", 12), ("E", 6)):
        crm.win_deal(WinDeal(deals[name]), at(won))
    ids["urgent"] = crm.open_ticket(OpenTicket(ids["B"], "无法登录", "phone", priority="urgent"), at(13))
    ids["normal"] = crm.open_ticket(OpenTicket(ids["A"], "发票", "email"), at(14))
    crm.change_ticket_status(ChangeTicketStatus(ids["normal"], "in_progress"), at(14 + 2 * HOUR))
    crm.resolve_ticket(ResolveTicket(ids["normal"], "已补开"), at(14 + 10 * HOUR))
    crm.rate_ticket(RateTicket(ids["normal"], 5, ""), at(15))
    ids["high"] = crm.open_ticket(OpenTicket(ids["C"], "报错", "web", priority="high"), at(15))
    return ids


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """One API over one history for the whole module: every test only reads."""
    path: Path = tmp_path_factory.mktemp("read-models") / "crm.sqlite3"
    return create_app(database_from_url(f"sqlite:///{path}"), registry())


@pytest.fixture(scope="module")
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ids(api: FastAPI) -> dict[str, UUID]:
    built = build(api.state.crm)
    project(api)
    return built


def get(client: TestClient, path: str, status: int = 200, headers: dict[str, str] = ANALYST,
        **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def jsonable(value: Any) -> Any:
    """What the API would send for `value`."""
    return orjson.loads(dumps(value))


# --- segments -------------------------------------------------------------------------------------

def test_tier_counts_as_of_an_instant(api: FastAPI, client: TestClient, ids: dict[str, UUID]) -> None:
    found = get(client, "/segments", as_of=day(20))

    assert [(t["tier"], t["customers"], t["value_cents"]) for t in found["tiers"]] == [
        ("high_value", 1, 30_000_000), ("potential", 3, 16_000_000), ("ordinary", 1, 0)]
    oracle = SegmentQueries(api.state.store).tier_counts(T0 + timedelta(20))
    assert found["tiers"] == jsonable([asdict(count) for count in oracle])
    assert "members" not in found


def test_a_tiers_members_are_paginated_most_valuable_first(client: TestClient, ids: dict[str, UUID]) -> None:
    first = get(client, "/segments", as_of=day(20), tier="potential", limit=2)["members"]
    rest = get(client, "/segments", as_of=day(20), tier="potential", limit=2, offset=2)["members"]

    assert [(m["customer_id"], m["monetary_cents"]) for m in first["items"]] == [
        (str(ids["E"]), 10_000_000), (str(ids["B"]), 6_000_000)]
    assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (3, 2, 0, 2)
    assert [m["customer_id"] for m in rest["items"]] == [str(ids["C"])] and rest["next_offset"] is None


def test_tier_counts_by_region_or_property_add_up_and_each_equals_the_filtered_report(
        client: TestClient, ids: dict[str, UUID]) -> None:
    plain = get(client, "/segments", as_of=day(20))["tiers"]
    by_region = get(client, "/segments", as_of=day(20), by="region")
    by_size = get(client, "/segments", as_of=day(20), by="account_size")

    assert (by_region["by"], [g["key"] for g in by_region["groups"]]) == ("region", [{"region": "华东"}])
    assert by_region["groups"][0]["tiers"] == plain == get(client, "/segments", as_of=day(20), region="华东")["tiers"]
    assert [g["key"] for g in by_size["groups"]] == [{"account_size": "unknown"}]
    empty = get(client, "/segments", as_of=day(20), region="华南", **{"property": "account_size=大客户"})["tiers"]
    assert [t["customers"] for t in empty] == [0, 0, 0]


def test_tier_counts_by_region_as_csv(client: TestClient, ids: dict[str, UUID]) -> None:
    response = client.get("/segments", params={"as_of": day(20), "by": "region", "format": "csv"}, headers=ANALYST)

    assert response.status_code == 200, response.text
    header, first = response.text.splitlines()[:2]
    assert header.startswith("key.region,tier,customers,currency,value_cents")
    assert first.startswith("华东,high_value,1,CNY,30000000")


@pytest.mark.parametrize("params, message", [
    ({"by": "Bad Name"}, "property"), ({"by": "region", "tier": "potential"}, "not with tier"),
    ({"property": "account_size"}, "name=value")])
def test_a_bad_group_or_filter_of_segments_is_refused(client: TestClient, ids: dict[str, UUID],
                                                      params: dict[str, str], message: str) -> None:
    assert message in get(client, "/segments", 422, **params)["error"]


def test_an_unknown_tier_is_refused_with_the_tiers(client: TestClient, ids: dict[str, UUID]) -> None:
    error = get(client, "/segments", 422, tier="vip")["error"]

    assert error == "invalid request: query.tier: Input should be 'high_value', 'potential' or 'ordinary'"


def test_one_customers_segment_as_of_an_instant(api: FastAPI, client: TestClient, ids: dict[str, UUID]) -> None:
    found = get(client, f"/segments/customers/{ids['A']}", as_of=day(20))

    assert (found["tier"], found["tier_since"], found["recency"], found["frequency"], found["monetary"]) == (
        "high_value", "2026-03-11T09:00:00+00:00", 5, 1, 3)
    oracle = SegmentQueries(api.state.store).segment_of(ids["A"], T0 + timedelta(20))
    assert oracle is not None and found == oracle.to_dict()


def test_a_customer_not_yet_registered_has_no_segment(client: TestClient, ids: dict[str, UUID]) -> None:
    error = get(client, f"/segments/customers/{ids['E']}", 404, as_of=day(1))["error"]

    assert error == f"customer {ids['E']} was in no segment as of 2026-03-02T09:00:00+00:00"


def test_a_customers_tier_history_up_to_an_instant(api: FastAPI, client: TestClient, ids: dict[str, UUID]) -> None:
    found = get(client, f"/segments/customers/{ids['A']}/history", as_of=day(20), limit=2)

    stays = found["history"]["items"]
    assert [(s["tier"], s["entered_at"][:10], s["left_at"] and s["left_at"][:10]) for s in stays] == [
        ("ordinary", "2026-03-01", "2026-03-02"), ("potential", "2026-03-02", "2026-03-11")]
    assert (found["history"]["total"], found["history"]["next_offset"]) == (3, 2)
    everything = get(client, f"/segments/customers/{ids['A']}/history", as_of=day(20))["history"]["items"]
    assert everything == [m.to_dict() for m in SegmentQueries(api.state.store).history(ids["A"], T0 + timedelta(20))]


def test_the_history_of_an_unknown_customer_is_404(client: TestClient, ids: dict[str, UUID]) -> None:
    unknown = "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e01"

    error = get(client, f"/segments/customers/{unknown}/history", 404, as_of=day(20))["error"]

    assert error == f"customer {unknown} was in no segment by 2026-03-21T09:00:00+00:00"


def test_movements_between_two_instants(api: FastAPI, client: TestClient, ids: dict[str, UUID]) -> None:
    found = get(client, "/segments/movements", start=day(0.5), end=day(20))

    assert found["movements"] == [{"from_tier": None, "to_tier": "potential", "customers": 1},
                                  {"from_tier": "ordinary", "to_tier": "high_value", "customers": 1},
                                  {"from_tier": "ordinary", "to_tier": "potential", "customers": 2}]
    oracle = SegmentQueries(api.state.store).movements(T0 + timedelta(0.5), T0 + timedelta(20))
    assert found["movements"] == [asdict(m) for m in oracle]


def test_movements_need_an_end_after_the_start(client: TestClient, ids: dict[str, UUID]) -> None:
    assert get(client, "/segments/movements", 422, start=day(5), end=day(5))["error"] == "end must come after start"


# --- reports --------------------------------------------------------------------------------------

def test_the_tickets_report_pages_its_sla_breaches_oldest_open_first(api: FastAPI, client: TestClient,
                                                                      ids: dict[str, UUID]) -> None:
    report = get(client, "/reports/tickets", as_of=day(20), limit=1)

    breaches = report["sla"]["breaching"]
    assert [(b["ticket_id"], b["resolution_hours"]) for b in breaches["items"]] == [(str(ids["urgent"]), 168.0)]
    assert (breaches["total"], breaches["next_offset"]) == (2, 1)
    assert (report["backlog"]["per_status"]["open"], report["backlog"]["per_status"]["resolved"]) == (2, 1)
    assert (report["csat"]["overall"]["ratings"], report["csat"]["overall"]["average"]) == (1, 5.0)
    oracle = TicketQueries(api.state.store, api.state.crm.keys.unseal_all_marks).report(T0 + timedelta(20)).to_dict()
    assert report["sla"]["breaching"]["items"] == jsonable(oracle["sla"]["breaching"][:1])
    assert {**report, "sla": None} == jsonable({**oracle, "sla": None})


def test_the_tickets_report_pages_its_sla_breaches_in_the_query(api: FastAPI, client: TestClient,
                                                                 ids: dict[str, UUID]) -> None:
    """The second page holds the reference's second breach (the plain report lists one page, in SQL)."""
    second = get(client, "/reports/tickets", as_of=day(20), limit=1, offset=1)["sla"]["breaching"]
    past = get(client, "/reports/tickets", as_of=day(20), limit=5, offset=7)["sla"]["breaching"]

    oracle = FactsTicketQueries(api.state.store, api.state.crm.keys.unseal_all_marks).report(T0 + timedelta(20))
    assert second["items"] == jsonable(oracle.to_dict()["sla"]["breaching"][1:2])
    assert (second["total"], second["offset"], second["next_offset"]) == (2, 1, None)
    assert (past["items"], past["total"], past["next_offset"]) == ([], 2, None)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "many"}])
def test_the_tickets_report_refuses_a_bad_page(client: TestClient, ids: dict[str, UUID],
                                               params: dict[str, object]) -> None:
    assert get(client, "/reports/tickets", 422, **params)["error"]


def test_the_tickets_report_per_priority_is_the_read_models_groups(api: FastAPI, client: TestClient,
                                                                   ids: dict[str, UUID]) -> None:
    grouped = get(client, "/reports/tickets", as_of=day(20), by="priority", limit=1)

    assert [(g["key"], g["funnel"]["feedback"], g["sla"]["breaching"]["total"]) for g in grouped["groups"]] == [
        ({"priority": "high"}, 1, 1), ({"priority": "normal"}, 1, 0), ({"priority": "urgent"}, 1, 1)]
    oracle = TicketQueries(api.state.store, api.state.crm.keys.unseal_all_marks).grouped(T0 + timedelta(20), "priority")
    assert [{**g, "sla": None} for g in grouped["groups"]] == jsonable(
        [{**g, "sla": None} for g in oracle.to_dict()["groups"]])


def test_the_tickets_report_by_priority_pages_each_groups_breaches_from_the_offset(client: TestClient,
                                                                                  ids: dict[str, UUID]) -> None:
    """`by` with `offset` skips in each group as the plain report does, each total kept (`crm tickets --by …
    --breaching-offset` the same: test_tickets_commands.py::test_grouped_breaching_tickets_are_paged_from…)."""
    first = get(client, "/reports/tickets", as_of=day(20), by="priority", limit=1)["groups"]
    past = get(client, "/reports/tickets", as_of=day(20), by="priority", limit=1, offset=1)["groups"]

    assert [(g["key"]["priority"], len(g["sla"]["breaching"]["items"])) for g in first] == [
        ("high", 1), ("normal", 0), ("urgent", 1)]
    assert [(g["sla"]["breaching"]["items"], g["sla"]["breaching"]["total"], g["sla"]["breaching"]["offset"],
             g["sla"]["breaching"]["next_offset"]) for g in past] == [([], 1, 1, None), ([], 0, 1, None),
                                                                      ([], 1, 1, None)]


def test_the_tickets_report_by_a_customer_property_and_filtered_by_one(client: TestClient,
                                                                        ids: dict[str, UUID]) -> None:
    by_size = get(client, "/reports/tickets", as_of=day(20), by="account_size")
    filtered = get(client, "/reports/tickets", as_of=day(20), property="account_size=大型")
    as_csv = client.get("/reports/tickets", params={"as_of": day(20), "by": "region", "format": "csv"},
                        headers=ANALYST)

    assert [(g["key"], g["funnel"]["feedback"]) for g in by_size["groups"]] == [({"account_size": None}, 3)]
    assert filtered["funnel"]["feedback"] == 0 and filtered["csat"]["overall"]["satisfied_share"] is None
    lines = as_csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("key.region,tickets,open,resolved") and lines[1].startswith("华东,3,2,1")


@pytest.mark.parametrize("params", [{"by": "No Such"}, {"property": "account_size"}, {"property": "Bad=x"}])
def test_the_tickets_report_refuses_a_bad_axis_or_filter(client: TestClient, ids: dict[str, UUID],
                                                         params: dict[str, str]) -> None:
    assert get(client, "/reports/tickets", 422, **params)["error"]


def test_the_campaigns_report_pages_its_campaigns_in_planning_order(api: FastAPI, client: TestClient,
                                                                    ids: dict[str, UUID]) -> None:
    report = get(client, "/reports/campaigns", as_of=day(20), limit=1)

    campaigns = report["campaigns"]
    fair = campaigns["items"][0]
    assert (fair["name"], fair["totals"]["cost_cents"], fair["totals"]["won_revenue_cents"]) == (
        "春季展会", 2_000_000, 30_000_000)
    assert (fair["totals"]["roi"], fair["totals"]["cac_cents"]) == (14.0, 2_000_000)
    assert (campaigns["total"], campaigns["next_offset"]) == (2, 1)
    oracle = jsonable(CampaignQueries(api.state.store).report(T0 + timedelta(20)).to_dict())
    assert campaigns["items"] == oracle["campaigns"][:1] and {**report, "campaigns": None} == {
        **oracle, "campaigns": None}


def test_the_campaigns_report_of_one_channel(client: TestClient, ids: dict[str, UUID]) -> None:
    report = get(client, "/reports/campaigns", as_of=day(20), channel="email")

    assert report["channel"] == "email"
    assert [c["name"] for c in report["campaigns"]["items"]] == ["双十一邮件"]


def test_the_campaigns_report_by_region_adds_up_without_a_cost_split(api: FastAPI, client: TestClient,
                                                                      ids: dict[str, UUID]) -> None:
    grouped = get(client, "/reports/campaigns", as_of=day(20), by="region")
    as_csv = client.get("/reports/campaigns", params={"as_of": day(20), "by": "region", "format": "csv"},
                        headers=ANALYST)

    oracle = CampaignQueries(api.state.store).grouped(T0 + timedelta(20), "region").to_dict()
    assert grouped["cost_note"] == "cost is recorded per campaign, not per region"
    assert [g["key"] for g in grouped["groups"]] == [{"region": "华东"}]  # A's deal follows its customer
    fair = grouped["groups"][0]["campaigns"]["items"][0]
    assert (fair["name"], fair["totals"]["won_revenue_cents"], fair["totals"]["cost_cents"], fair["totals"]["roi"]) \
        == ("春季展会", 30_000_000, None, None)
    assert fair == jsonable(oracle["groups"][0]["campaigns"][0])
    lines = as_csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("key.region,campaign_id,name") and "cost is recorded per campaign" in lines[1]


def test_the_campaigns_report_filtered_by_a_lead_property(client: TestClient, ids: dict[str, UUID]) -> None:
    filtered = get(client, "/reports/campaigns", as_of=day(20), property="product=软件")

    assert filtered["properties"] == {"product": "软件"}
    assert all(row["totals"]["deals"] == 0 and row["totals"]["cost_cents"] is None for row in filtered["campaigns"])


@pytest.mark.parametrize("params", [{"by": "Bad name"}, {"by": "owner"}, {"by": "region", "channel": "email"},
                                    {"property": "product"}, {"property": "product=x", "channel": "email"},
                                    {"property": "product=x", "by": "region"}])
def test_the_campaigns_report_refuses_a_bad_axis(client: TestClient, ids: dict[str, UUID],
                                                 params: dict[str, str]) -> None:
    assert get(client, "/reports/campaigns", 422, **params)["error"]


def test_an_unknown_channel_is_refused(client: TestClient, ids: dict[str, UUID]) -> None:
    error = get(client, "/reports/campaigns", 422, channel="fax")["error"]

    assert error.startswith("unknown acquisition channel 'fax'; expected one of: email, event, partner")


def test_customer_values_highest_first_and_paginated(api: FastAPI, client: TestClient,
                                                     ids: dict[str, UUID]) -> None:
    found = get(client, "/reports/customer-values", as_of=day(20), limit=2)["customers"]

    assert found["items"] == [
        {"customer_id": str(ids["A"]), "currency": "CNY", "value_cents": 30_000_000, "unconverted": {}},
        {"customer_id": str(ids["E"]), "currency": "CNY", "value_cents": 10_000_000, "unconverted": {}}]
    assert (found["total"], found["next_offset"]) == (3, 2)
    oracle = CampaignQueries(api.state.store).customer_values(T0 + timedelta(20))
    assert {UUID(v["customer_id"]): v["value_cents"] for v in found["items"]} == {
        i: oracle[i] for i in (ids["A"], ids["E"])}


def test_customer_values_before_any_win_are_empty(client: TestClient, ids: dict[str, UUID]) -> None:
    found = get(client, "/reports/customer-values", as_of=day(5))["customers"]

    assert (found["items"], found["total"], found["next_offset"]) == ([], 0, None)


# --- timeline -------------------------------------------------------------------------------------

def test_a_customers_timeline_is_paginated_oldest_first(api: FastAPI, client: TestClient,
                                                        ids: dict[str, UUID]) -> None:
    first = get(client, f"/customers/{ids['A']}/timeline", as_of=day(20), limit=2)
    last = get(client, f"/customers/{ids['A']}/timeline", as_of=day(20), limit=2, offset=6)

    assert [e["kind"] for e in first["items"]] == ["Customer.Registered", "Deal.Opened"]
    assert (first["customer_id"], first["total"], first["limit"], first["offset"], first["next_offset"]) == (
        str(ids["A"]), 7, 2, 0, 2)
    assert [e["summary"] for e in last["items"]] == ["发票: rated 5/5"] and last["next_offset"] is None
    oracle = TimelineQueries(api.state.store, api.state.crm.keys.unseal_marks).timeline(ids["A"], T0 + timedelta(20), 2, 0)
    assert first["items"] == [{**e.to_dict(), "subject_external_id": ""} for e in oracle.entries]


def test_the_timeline_as_of_an_earlier_instant_ends_there(client: TestClient, ids: dict[str, UUID]) -> None:
    found = get(client, f"/customers/{ids['A']}/timeline", as_of=day(10.5))

    assert [e["occurred_at"][:10] for e in found["items"]] == ["2026-03-01", "2026-03-02", "2026-03-11"]
    assert (found["as_of"], found["total"]) == ("2026-03-11T21:00:00+00:00", 3)


def test_an_instant_without_a_zone_is_refused(client: TestClient, ids: dict[str, UUID]) -> None:
    error = get(client, f"/customers/{ids['A']}/timeline", 422, as_of="2026-03-20T09:00:00")["error"]

    assert error == "invalid request: query.as_of: Input should have timezone info"


def test_the_timeline_of_a_customer_not_yet_registered_is_404(client: TestClient, ids: dict[str, UUID]) -> None:
    error = get(client, f"/customers/{ids['E']}/timeline", 404, as_of=day(1))["error"]

    assert error == f"no customer with id {ids['E']} as of 2026-03-02T09:00:00+00:00"


# --- roles ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "path", "status"), [
    ("service", "/segments", 403), ("sales", "/segments", 200),
    ("service", "/reports/tickets", 200), ("sales", "/reports/campaigns", 200),
    ("service", "/customers/{A}/timeline", 200), ("sales", "/customers/{A}/timeline", 200),
])
def test_roles_reading_the_read_models(client: TestClient, ids: dict[str, UUID], role: str, path: str,
                                       status: int) -> None:
    response = client.get(path.format(A=ids["A"]), headers=auth(role))

    assert response.status_code == status, response.text


def test_service_is_told_it_cannot_read_segments(client: TestClient, ids: dict[str, UUID]) -> None:
    error = get(client, "/segments", 403, headers=auth("service"))["error"]

    assert error == "role 'service' has no read access to segments"
