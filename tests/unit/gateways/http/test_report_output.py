"""Reports over HTTP as JSON or CSV: missing rates are null with a reason, lists are paged with a total,
`?format=csv` and `Accept: text/csv` give one flat table that parses back."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer
from tests.unit.gateways.http.test_queries import command, day

ANALYST = auth("analyst")


def get(client: TestClient, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = client.get(path, params=params, headers={**ANALYST, **(headers or {})})
    assert response.status_code == 200, response.text
    return response


def rows(response: Any) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_an_empty_funnel_has_no_rates_only_reasons(client: TestClient) -> None:
    report = get(client, "/funnel", as_of=day(1)).json()

    assert (report["win_rate"], report["win_rate_note"]) == (None, "no decided items (none advanced or lost)")
    assert all(row["conversion_to_next"] is None and row["conversion_note"] == "no item reached it"
               for row in report["rows"])
    summary = rows(get(client, "/funnel", as_of=day(1), format="csv", table="summary"))
    assert (summary[0]["win_rate"], summary[0]["win_rate_note"]) == ("", report["win_rate_note"])


def test_a_funnel_without_losses_has_no_win_rate_of_100_percent(client: TestClient) -> None:
    customer = register_customer(client, occurred_at=day(0))
    won = open_deal(client, customer, occurred_at=day(0), amount="100", owner="李娜")
    command(client, "POST", f"/deals/{won}/win", 1)
    project(client.app)  # type: ignore[arg-type]

    report = get(client, "/funnel", as_of=day(2)).json()

    assert (report["won"], report["lost"], report["win_rate"]) == (1, 0, None)
    assert report["win_rate_note"].startswith("no lost items recorded")


def test_the_funnel_as_csv_is_one_row_per_stage_and_parses_back(client: TestClient) -> None:
    customer = register_customer(client, occurred_at=day(0))
    for opened in range(3):
        open_deal(client, customer, occurred_at=day(opened), amount="100", owner="王伟")
    project(client.app)  # type: ignore[arg-type]

    json_rows = get(client, "/funnel", as_of=day(40)).json()["rows"]
    by_param = rows(get(client, "/funnel", as_of=day(40), format="csv"))
    by_header = rows(get(client, "/funnel", {"Accept": "text/csv"}, as_of=day(40)))

    assert by_param == by_header
    assert [row["stage"] for row in by_param] == [row["stage"] for row in json_rows]
    assert by_param[0]["label"] == json_rows[0]["label"] and "潜在客户" in by_param[0]["label"]
    assert (by_param[0]["items"], by_param[0]["still_open"], by_param[0]["conversion_to_next"]) == ("3", "3", "")
    stuck = get(client, "/funnel", as_of=day(40), format="csv", table="stuck", limit=2)
    assert len(rows(stuck)) == 2
    summary = rows(get(client, "/funnel", as_of=day(40), format="csv", table="summary", limit=2))
    assert summary[0]["stuck_total"] == "3"


def test_an_unknown_table_is_refused_with_the_names_of_the_tables(client: TestClient) -> None:
    response = client.get("/funnel", params={"format": "csv", "table": "nope"}, headers=ANALYST)

    assert response.status_code == 400
    assert "stages, stuck, summary" in response.text


def test_a_bom_is_there_only_when_asked(client: TestClient) -> None:
    plain = get(client, "/funnel", format="csv").content
    excel = get(client, "/funnel", format="csv", bom="true").content

    assert not plain.startswith(b"\xef\xbb\xbf") and excel == b"\xef\xbb\xbf" + plain


def test_flow_and_compare_as_csv(client: TestClient) -> None:
    flow = rows(get(client, "/funnel/flow", start=day(0), end=day(5), format="csv"))
    compare = rows(get(client, "/funnel/compare", first=day(0), second=day(5), format="csv"))

    assert set(flow[0]) == {"stage", "entered", "advanced", "lost"}
    assert {"items_first", "items_second", "items_change", "conversion_to_next_first"} <= set(compare[0])


def test_the_ticket_and_campaign_reports_as_csv(client: TestClient) -> None:
    tickets = get(client, "/reports/tickets", format="csv")
    campaigns = get(client, "/reports/campaigns", format="csv", table="channels")

    assert [row["step"] for row in rows(tickets)] == ["feedback", "resolved", "surveyed", "satisfied", "loyal"]
    assert all(row["conversion"] == "" for row in rows(tickets))  # nothing to divide by: empty, not 0
    assert rows(campaigns) == []


def test_segments_timeline_and_deal_history_as_csv(client: TestClient) -> None:
    customer = register_customer(client, occurred_at=day(0))
    deal = open_deal(client, customer, occurred_at=day(1), amount="100", owner="李娜")
    project(client.app)  # type: ignore[arg-type]

    tiers = rows(get(client, "/segments", as_of=day(2), format="csv"))
    timeline = rows(get(client, f"/customers/{customer}/timeline", as_of=day(2), format="csv"))
    history = rows(get(client, f"/deals/{deal}/history", format="csv"))

    assert sum(int(row["customers"]) for row in tiers) == 1
    assert all(row["average_recency"] == "" for row in tiers if row["customers"] == "0")  # no average of nobody
    assert [row["kind"] for row in timeline][:1] == ["Customer.Registered"]
    assert history[0]["event"] == "Opened" and history[0]["occurred_at"].startswith("2026-03-02T09:00")


def test_openapi_says_which_answers_may_be_csv(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    for path in ("/funnel", "/funnel/flow", "/funnel/compare", "/reports/tickets", "/reports/campaigns",
                 "/reports/customer-values", "/segments", "/segments/movements", "/customers/{customer_id}/timeline",
                 "/deals/{deal_id}/history", "/segments/customers/{customer_id}/history"):
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == {"application/json", "text/csv"}, path
    assert "text/csv" not in paths["/deals/{deal_id}"]["get"]["responses"]["200"]["content"]


def test_the_funnel_csv_keeps_a_usd_deal_without_a_rate_with_its_currency_and_source_id(client: TestClient) -> None:
    customer = register_customer(client, occurred_at=day(0))
    deal = open_deal(client, customer, occurred_at=day(0), amount="5000", currency="USD", owner="王伟",
                     source="salesforce", external_id="006B")
    project(client.app)  # type: ignore[arg-type]

    [summary] = rows(get(client, "/funnel", as_of=day(40), format="csv", table="summary"))
    first = rows(get(client, "/funnel", as_of=day(40), format="csv"))[0]
    apart = rows(get(client, "/funnel", as_of=day(40), format="csv", table="unconverted"))
    [stuck] = get(client, "/funnel", as_of=day(40)).json()["stuck"]["items"]

    assert (summary["currency"], summary["unconverted.USD"]) == ("CNY", "500000")
    assert (first["currency"], first["value_cents"], first["unconverted.USD"]) == ("CNY", "0", "500000")
    assert apart == [{"currency": "USD", "cents": "500000"}]
    assert (stuck["item_id"], stuck["currency"], stuck["external_id"]) == (deal, "USD", "salesforce:006B")
