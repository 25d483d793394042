"""GET /reminders (open as of an instant, by owner, JSON or CSV) and PUT /pipelines/{key}/stages/{stage}/reminders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.reminder_process import ReminderProcess
from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer


def test_thresholds_set_over_http_remind_and_the_reminder_is_listed_by_name_and_customer(client: TestClient,
                                                                                         api: FastAPI) -> None:
    answer = client.put("/pipelines/sales/stages/lead/reminders", json={"remind_after_days": [1, 3]},
                        headers=auth("admin"))
    assert answer.status_code == 200, answer.text
    deal = open_deal(client, register_customer(client, company="杭州云启科技"), owner="李娜", stage="lead")
    later = datetime.now(timezone.utc) + timedelta(days=2)
    process = ReminderProcess(api.state.crm, api.state.store, clock=lambda: later)
    process.run_step()
    project(api)

    found = client.get("/reminders", params={"as_of": later.isoformat(), "owner": "李娜"}, headers=auth("sales"))
    assert found.status_code == 200, found.text
    (reminder,) = found.json()["reminders"]["items"]
    assert (reminder["item"], reminder["customer"], reminder["item_id"], reminder["threshold"], reminder["stage"]) == \
        ("增购", "杭州云启科技", deal, "1d", "lead")
    assert client.get("/reminders", params={"as_of": later.isoformat(), "owner": "王伟"},
                      headers=auth("sales")).json()["reminders"]["total"] == 0
    assert client.get("/reminders", headers=auth("sales")).json()["reminders"]["total"] == 0  # now: not yet due
    csv = client.get("/reminders", params={"as_of": later.isoformat(), "format": "csv"}, headers=auth("service"))
    assert csv.status_code == 200 and "增购" in csv.text and "杭州云启科技" in csv.text


def test_bad_thresholds_are_refused_with_a_sentence_and_nothing_is_written(client: TestClient, api: FastAPI) -> None:
    before = api.state.crm.event_count()
    for body in ({"remind_after_days": [7, 3]}, {"remind_after_days": [0]}, {"remind_after_days": "3"}, {}):
        answer = client.put("/pipelines/sales/stages/lead/reminders", json=body, headers=auth("admin"))
        assert 400 <= answer.status_code < 500 and answer.json()["error"], (body, answer.text)
    assert client.put("/pipelines/sales/stages/nowhere/reminders", json={"remind_after_days": [1]},
                      headers=auth("admin")).status_code in (400, 404, 422)
    assert client.put("/pipelines/sales/stages/lead/reminders", json={"remind_after_days": [1]},
                      headers=auth("sales")).status_code == 403
    assert api.state.crm.event_count() == before
