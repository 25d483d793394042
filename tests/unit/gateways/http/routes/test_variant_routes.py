"""A campaign's A/B test over HTTP: variants defined, exposures, responses and leads naming a variant, a stop and
a winner; GET /campaigns/{id}/variants as JSON and CSV, as of an instant — and bad input refused with a 4xx
sentence, nothing written."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, project, register_customer

AT = "2026-03-02T09:00:00+08:00"
AB = [{"key": "A", "name": "原文案", "copy": "春季八折", "weight": 1},
      {"key": "对照组B", "name": "新文案", "offer": "买一送一", "channel": "wechat", "weight": 1}]


def _campaign(client: TestClient) -> str:
    made = client.post("/campaigns", json={"name": "春季推广", "channel": "event", "budget": "1000",
                                           "occurred_at": AT}, headers=auth("sales"))
    assert made.status_code == 201, made.text
    return made.json()["id"]


def _events(api: FastAPI) -> int:
    return api.state.crm.event_count()


def test_an_ab_test_is_recorded_and_reported(client: TestClient, api: FastAPI) -> None:
    campaign = _campaign(client)
    defined = client.put(f"/campaigns/{campaign}/variants", json={"variants": AB, "reason": "首轮"},
                         headers={**auth("sales"), "If-Match": '"1"'})
    assert defined.status_code == 200 and defined.json()["version"] == 2, defined.text
    assert client.post(f"/campaigns/{campaign}/launch", json={}, headers=auth("sales")).status_code == 200
    for key, count in (("A", 500), ("对照组B", 400)):
        answer = client.post(f"/campaigns/{campaign}/variants/{key}/exposures", json={"count": count, "note": "群发"},
                             headers=auth("sales"))
        assert answer.status_code == 200, answer.text
    customer = register_customer(client)
    responded = client.post(f"/campaigns/{campaign}/responses",
                            json={"kind": "click", "customer_id": customer, "variant": "对照组B"}, headers=auth("sales"))
    assert responded.status_code == 200, responded.text
    lead = client.post("/leads", json={"name": "王芳", "campaign_id": campaign, "variant": "A"}, headers=auth("sales"))
    assert lead.status_code == 201, lead.text
    assert client.post(f"/campaigns/{campaign}/variants/A/stop", json={"reason": "投诉多"},
                       headers=auth("sales")).status_code == 200
    assert client.post(f"/campaigns/{campaign}/variants/对照组B/winner", json={"reason": "点击率高"},
                       headers=auth("sales")).status_code == 200
    project(api)
    report = client.get(f"/campaigns/{campaign}/variants", headers=auth("analyst"))
    assert report.status_code == 200, report.text
    body = report.json()
    a, b = body["variants"]
    assert (a["exposures"], a["leads"], b["exposures"], b["responses"]) == (500, 1, 400, 1)
    assert a["stopped"]["reason"] == "投诉多" and body["winner"]["variant"] == "对照组B"
    assert body["comparisons"][0]["verdict"] == "not enough data"
    before = client.get(f"/campaigns/{campaign}/variants", params={"as_of": "2026-03-01T00:00:00+00:00"},
                        headers=auth("sales")).json()
    assert before["variants"] == [] and before["baseline"] is None
    csv = client.get(f"/campaigns/{campaign}/variants", params={"format": "csv", "step": "leads"},
                     headers=auth("sales"))
    assert csv.status_code == 200 and csv.text.startswith("step,key,name,copy,channel,landing_page,offer,weight")
    assert "对照组B" in csv.text
    table = client.get(f"/campaigns/{campaign}/variants", params={"format": "csv", "table": "comparisons",
                                                                  "baseline": "对照组B"}, headers=auth("sales"))
    assert table.text.splitlines()[1].startswith("responses,对照组B,A,")


def test_bad_input_is_refused_with_a_sentence_and_nothing_written(client: TestClient, api: FastAPI) -> None:
    campaign = _campaign(client)
    for variants, words in (([{"key": "A", "weight": 1}, {"key": "A", "weight": 2}], "given twice"),
                            ([{"key": "A", "weight": 1}, {"key": "B", "weight": 0}], "greater than zero"),
                            ([{"key": "A", "weight": 1}, {"key": "B", "weight": -1}], "greater than zero"),
                            ([{"key": "A", "weight": 1}], "at least 2"),
                            ([{"key": "A", "weight": 1}, {"weight": 1}], "has a key")):
        before = _events(api)
        answer = client.put(f"/campaigns/{campaign}/variants", json={"variants": variants}, headers=auth("sales"))
        assert answer.status_code == 422 and words in answer.json()["error"], (variants, answer.text)
        assert _events(api) == before
    assert client.put(f"/campaigns/{campaign}/variants", json={"variants": AB}, headers=auth("sales")).status_code == 200
    assert client.post(f"/campaigns/{campaign}/launch", json={}, headers=auth("sales")).status_code == 200
    customer = register_customer(client)
    before = _events(api)
    for method, path, body, words in (
            ("post", f"/campaigns/{campaign}/responses", {"kind": "click", "customer_id": customer, "variant": "Z"},
             "defines no variant 'Z'"),
            ("post", "/leads", {"name": "王芳", "campaign_id": campaign, "variant": "Z"}, "defines no variant 'Z'"),
            ("post", "/leads", {"name": "王芳", "variant": "A"}, "give the campaign too"),
            ("post", f"/campaigns/{campaign}/variants/Z/exposures", {"count": 5}, "defines no variant 'Z'"),
            ("post", f"/campaigns/{campaign}/variants/A/exposures", {"count": 0}, "greater than zero"),
            ("post", f"/campaigns/{campaign}/variants/A/stop", {"reason": ""}, "reason must not be empty"),
            ("post", f"/campaigns/{campaign}/variants/Z/winner", {"reason": "x"}, "defines no variant 'Z'")):
        answer = getattr(client, method)(path, json=body, headers=auth("sales"))
        assert answer.status_code == 422 and words in answer.json()["error"], (path, answer.text)
    assert _events(api) == before
    project(api)
    for params, words in (({"step": "exposures"}, "at one of the steps"), ({"baseline": "Z"}, "defines no variant")):
        answer = client.get(f"/campaigns/{campaign}/variants", params=params, headers=auth("sales"))
        assert answer.status_code == 422 and words in answer.json()["error"], (params, answer.text)
    missing = client.get("/campaigns/0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e04/variants", headers=auth("sales"))
    assert missing.status_code == 404
