"""Properties over HTTP (PATCH …/properties with If-Match), and the funnel grouped by them, by cohort and per
period (GET /funnel?by=…, /funnel/periods)."""

from __future__ import annotations

import csv

from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.funnel_rules import NO_LOSSES_RECORDED
from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

SALES, ANALYST = auth("sales"), auth("analyst")


def _patch(client: TestClient, path: str, changes: dict[str, str], **headers: str):
    return client.patch(path, json={"changes": changes}, headers={**SALES, **headers})


def test_a_deals_properties_are_set_at_the_version_seen_and_read_back(client: TestClient) -> None:
    deal = open_deal(client, register_customer(client))

    response = _patch(client, f"/deals/{deal}/properties", {"product": "GTX Pro", "team": "华东一组"},
                      **{"If-Match": '"1"'})
    stale = _patch(client, f"/deals/{deal}/properties", {"product": "MG"}, **{"If-Match": '"1"'})

    assert (response.status_code, response.json()["version"], response.headers["etag"]) == (200, 2, '"2"')
    assert stale.status_code == 409
    assert client.get(f"/deals/{deal}", headers=SALES).json()["properties"] == {"product": "GTX Pro", "team": "华东一组"}
    assert _patch(client, f"/deals/{deal}/properties", {"team": ""}).json()["version"] == 3
    assert client.get(f"/deals/{deal}", headers=SALES).json()["properties"] == {"product": "GTX Pro"}


def test_a_deal_is_found_by_its_external_id(api: FastAPI, client: TestClient) -> None:
    open_deal(client, register_customer(client), source="hubspot", external_id="9001")
    project(api)

    response = _patch(client, "/deals/hubspot:9001/properties", {"product": "GTX"})

    assert response.status_code == 200, response.text


def test_leads_and_customers_have_properties_too(client: TestClient) -> None:
    customer = register_customer(client)
    lead = client.post("/leads", json={"name": "王芳", "region": "华东", "industry": "互联网", "channel": "event"},
                       headers=SALES).json()["id"]

    assert _patch(client, f"/customers/{customer}/properties", {"account_size": "大型"}).status_code == 200
    assert _patch(client, f"/leads/{lead}/properties", {"product": "GTX"}).status_code == 200
    assert client.get(f"/customers/{customer}", headers=SALES).json()["properties"] == {"account_size": "大型"}
    assert client.get(f"/leads/{lead}", headers=SALES).json()["properties"] == {"product": "GTX"}


def test_bad_properties_are_refused_with_a_sentence_and_nothing_is_written(client: TestClient, crm) -> None:
    deal = open_deal(client, register_customer(client))
    before = crm.event_count()

    for changes, status, says in (({"manager": "li@example.com"}, 422, "must not hold an e-mail address"),
                                  ({"owner": "x"}, 422, "is reserved"),
                                  ({"Product": "x"}, 422, "Product"),
                                  ({}, 422, "changes"),
                                  ({"product": "x" * 201}, 422, "product")):
        response = _patch(client, f"/deals/{deal}/properties", changes)
        assert response.status_code == status, (changes, response.text)
        assert says in response.text, (changes, response.text)
    assert crm.event_count() == before


def test_the_funnel_grouped_by_owner_property_and_cohort(api: FastAPI, client: TestClient) -> None:
    customer = register_customer(client)
    first = open_deal(client, customer, owner="李娜", occurred_at="2026-01-10T09:00:00+00:00")
    second = open_deal(client, customer, owner="王伟", occurred_at="2026-02-10T09:00:00+00:00")
    _patch(client, f"/customers/{customer}/properties", {"account_size": "大型"})
    _patch(client, f"/deals/{first}/properties", {"product": "GTX"})
    client.post(f"/deals/{second}/win", json={"occurred_at": "2026-03-10T09:00:00+00:00"}, headers=SALES)
    project(api)

    by_owner = client.get("/funnel", params={"by": "owner"}, headers=ANALYST).json()
    by_product = client.get("/funnel", params={"by": ["product", "account_size"], "cohort": "month"},
                            headers=ANALYST).json()

    assert by_owner["by"] == ["owner"]
    assert [(g["key"], g["open_items"], g["won"]) for g in by_owner["groups"]] == [
        ({"owner": "李娜"}, 1, 0), ({"owner": "王伟"}, 0, 1)]
    assert by_owner["groups"][0]["stuck"]["total"] == 1  # each group's stuck items are one page
    assert [g["key"] for g in by_product["groups"]] == [
        {"product": "GTX", "account_size": "大型", "cohort": "2026-01"},
        {"product": None, "account_size": "大型", "cohort": "2026-02"}]
    filtered = client.get("/funnel", params={"property": "product=GTX"}, headers=ANALYST).json()
    assert filtered["open_items"] == 1 and filtered["won"] == 0


def test_the_funnel_per_period_and_its_refusals(api: FastAPI, client: TestClient) -> None:
    customer = register_customer(client)
    deal = open_deal(client, customer, occurred_at="2026-01-10T09:00:00+00:00")
    client.post(f"/deals/{deal}/win", json={"occurred_at": "2026-02-09T09:00:00+00:00"}, headers=SALES)
    project(api)

    body = client.get("/funnel/periods", params={"grain": "month", "end": "2026-04-01T00:00:00Z"},
                      headers=ANALYST).json()

    assert [(p["period"], p["won"], p["lost"], p["win_rate"], p["average_cycle_days"]) for p in body["periods"]] == [
        ("2026-02", 1, 0, None, 30.0), ("2026-03", 0, 0, None, None)]  # won, none lost: no rate (funnel_rules)
    assert body["periods"][0]["win_rate_note"] == NO_LOSSES_RECORDED
    by_owner = client.get("/funnel/periods", params={"grain": "quarter", "by": "owner", "end": "2026-04-01T00:00:00Z"},
                          headers=ANALYST).json()
    assert [(g["key"], [p["won"] for p in g["periods"]]) for g in by_owner["groups"]] == [({"owner": "李娜"}, [1])]
    for params, says in (({"by": "Owner"}, "lower-case"), ({"cohort": "fortnight"}, "cohort"),
                         ({"property": "product"}, "name=value")):
        response = client.get("/funnel", params=params, headers=ANALYST)
        assert response.status_code == 422 and says in response.text, (params, response.text)
    assert client.get("/funnel/periods", params={"grain": "fortnight"}, headers=ANALYST).status_code == 422


def test_periods_and_cohorts_are_the_installations_time_zones_and_utcs_when_asked(
        api: FastAPI, client: TestClient, monkeypatch) -> None:
    """Opened at 01:00 on 1 March and won at 00:30 on 1 April in Shanghai: March's cohort and Q2's win there,
    February's cohort and Q1's win in UTC; the answer's instants carry the zone they are shown in."""
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    deal = open_deal(client, register_customer(client), occurred_at="2026-02-28T17:00:00+00:00")
    client.post(f"/deals/{deal}/win", json={"occurred_at": "2026-03-31T16:30:00+00:00"}, headers=SALES)
    project(api)

    def won(**params: str) -> dict[str, int]:
        body = client.get("/funnel/periods", params={"grain": "quarter", "start": "2026-02-01T00:00:00Z",
                                                     "end": "2026-05-01T00:00:00Z", **params}, headers=ANALYST).json()
        return {p["period"]: p["won"] for p in body["periods"]}

    assert won() == {"2026-Q1": 0, "2026-Q2": 1}
    assert won(tz="UTC") == {"2026-Q1": 1, "2026-Q2": 0}
    body = client.get("/funnel/periods", params={"grain": "quarter", "end": "2026-05-01T00:00:00Z"},
                      headers=ANALYST).json()
    assert (body["time_zone"], body["end"], body["periods"][-1]["start"]) == (
        "Asia/Shanghai", "2026-05-01T08:00:00+08:00", "2026-04-01T00:00:00+08:00")
    cohorts = {tz: [g["key"]["cohort"] for g in client.get("/funnel", params={"cohort": "month", "tz": tz},
                                                              headers=ANALYST).json()["groups"]]
               for tz in ("Asia/Shanghai", "UTC")}
    assert cohorts == {"Asia/Shanghai": ["2026-03"], "UTC": ["2026-02"]}
    refused = client.get("/funnel/periods", params={"tz": "Mars/Olympus"}, headers=ANALYST)
    assert refused.status_code == 422 and "not a time zone" in refused.json()["error"]


def test_grouped_funnels_and_periods_convert_as_the_plain_funnel(api: FastAPI, client: TestClient) -> None:
    customer = register_customer(client)
    won = open_deal(client, customer, owner="李娜", amount="100", currency="USD",
                    occurred_at="2026-01-10T09:00:00+00:00")
    open_deal(client, customer, owner="王伟", amount="50", currency="BRL", occurred_at="2026-01-10T09:00:00+00:00")
    client.post(f"/deals/{won}/win", json={"occurred_at": "2026-02-09T09:00:00+00:00"}, headers=SALES)
    rate = {"currency": "USD", "rate": "7.1", "valid_from": "2026-01-01", "source": "人民银行"}
    assert client.post("/exchange-rates", json=rate, headers=auth("admin")).status_code == 201
    project(api)
    end = "2026-04-01T00:00:00Z"

    plain = client.get("/funnel", params={"as_of": end}, headers=ANALYST).json()
    by_owner = client.get("/funnel", params={"by": "owner", "as_of": end}, headers=ANALYST).json()
    periods = client.get("/funnel/periods", params={"grain": "quarter", "by": "owner", "end": end},
                         headers=ANALYST).json()

    assert (by_owner["currency"], by_owner["rates"], by_owner["unconverted"]) == (
        "CNY", plain["rates"], {"BRL": 5000}) == ("CNY", {"USD": {"rate": "7.1", "valid_from": "2026-01-01"}},
                                                  plain["unconverted"])
    assert [(g["key"]["owner"], g["won_value_cents"], g["unconverted"]) for g in by_owner["groups"]] == [
        ("李娜", 71_000, {}), ("王伟", 0, {"BRL": 5000})]
    assert by_owner["groups"][1]["stuck"]["items"][0]["currency"] == "BRL"
    assert periods["rates"] == plain["rates"]
    assert [(g["key"], [(p["won_value_cents"], p["currency"]) for p in g["periods"]]) for g in periods["groups"]] == [
        ({"owner": "李娜"}, [(71_000, "CNY")])]


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv"), response.text
    return list(csv.DictReader(response.text.splitlines()))


def test_grouped_funnels_and_periods_answer_csv_as_the_plain_funnel(api: FastAPI, client: TestClient) -> None:
    customer = register_customer(client)
    won = open_deal(client, customer, owner="李娜", occurred_at="2026-01-10T09:00:00+00:00")
    open_deal(client, customer, owner="王伟", occurred_at="2026-01-10T09:00:00+00:00")
    client.post(f"/deals/{won}/win", json={"occurred_at": "2026-02-09T09:00:00+00:00"}, headers=SALES)
    project(api)
    grouped = {"by": "owner", "as_of": "2026-04-01T00:00:00Z", "stuck_days": "0", "limit": "1"}

    groups = _csv(client.get("/funnel", params={**grouped, "format": "csv"}, headers=ANALYST))
    stages = _csv(client.get("/funnel", params={**grouped, "format": "csv", "table": "stages"}, headers=ANALYST))
    stuck = _csv(client.get("/funnel", params={**grouped, "table": "stuck"},
                            headers={**ANALYST, "Accept": "text/csv"}))
    body = client.get("/funnel", params=grouped, headers=ANALYST).json()
    periods = _csv(client.get("/funnel/periods", params={"by": "owner", "end": "2026-04-01T00:00:00Z",
                                                         "format": "csv"}, headers=ANALYST))
    unknown = client.get("/funnel", params={**grouped, "format": "csv", "table": "nope"}, headers=ANALYST)

    assert [(g["key.owner"], g["won"], g["win_rate"], g["win_rate_note"], g["stuck_total"]) for g in groups] == [
        ("李娜", "1", "", NO_LOSSES_RECORDED, "0"), ("王伟", "0", "", body["groups"][1]["win_rate_note"], "1")]
    assert {"key.owner", "reached", "advanced", "lost", "still_open"} <= set(stages[0])
    assert [row["key.owner"] for row in stuck] == ["王伟"]
    assert [g["stuck"]["total"] for g in body["groups"]] == [0, 1]
    assert [(p["key.owner"], p["period"], p["won"]) for p in periods][:2] == [("李娜", "2026-02", "1"),
                                                                               ("李娜", "2026-03", "0")]
    assert unknown.status_code == 400 and "stages" in unknown.text
