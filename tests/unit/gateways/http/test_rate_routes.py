"""/exchange-rates: admin records a date's rate (201; the same again 200 unchanged; another figure 200
corrected); sales and analysts read the rates in force at an instant and every rate recorded; bad input
is a 4xx sentence and writes nothing."""

from __future__ import annotations

from tests.unit.gateways.http.conftest import auth, project


def _record(client, role="admin", **fields):
    body = {"currency": "USD", "rate": "7.1", "valid_from": "2026-03-02", "source": "人民银行", **fields}
    return client.post("/exchange-rates", json=body, headers=auth(role))


def test_admin_records_a_rate_and_the_same_again_writes_nothing(client, crm) -> None:
    before = crm.event_count()
    first = _record(client)
    again = _record(client, rate="7.10")
    corrected = _record(client, rate="7.2")

    assert (first.status_code, first.json()["outcome"]) == (201, "recorded")
    assert first.json() | {"id": "x"} == {"id": "x", "outcome": "recorded", "currency": "USD", "quote": "CNY",
                                          "valid_from": "2026-03-02"}
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    assert (corrected.status_code, corrected.json()["outcome"]) == (200, "corrected")
    assert crm.event_count() == before + 2


def test_only_admin_records_rates_and_sales_and_analysts_read_them(client, api) -> None:
    assert _record(client, role="sales").status_code == 403
    assert _record(client, role="analyst").status_code == 403
    _record(client)
    _record(client, currency="BRL", rate="1.25", valid_from="2026-03-05")
    project(api)

    for role in ("sales", "analyst"):
        response = client.get("/exchange-rates?as_of=2026-03-03T00:00:00Z", headers=auth(role))
        assert response.status_code == 200, response.text
        assert response.json()["rates"] == [{"currency": "USD", "rate": "7.1", "valid_from": "2026-03-02"}]
    assert client.get("/exchange-rates", headers=auth("service")).status_code == 403
    recorded = client.get("/exchange-rates/recorded?currency=BRL", headers=auth("analyst")).json()["rates"]
    assert recorded == [{"currency": "BRL", "quote": "CNY", "valid_from": "2026-03-05", "rate": "1.25",
                         "source": "人民银行"}]


def test_bad_rates_are_refused_with_a_sentence_and_nothing_is_written(client, crm) -> None:
    before = crm.event_count()
    for fields in ({"rate": "0"}, {"rate": 7.1}, {"rate": "-1"}, {"currency": "usd"}, {"currency": "XAU"},
                   {"currency": "CNY"}, {"valid_from": "0226-01-01"}, {"source": ""}):
        response = _record(client, **fields)
        assert 400 <= response.status_code < 500, (fields, response.text)
        assert response.json()["error"], fields
    assert crm.event_count() == before


def test_a_method_the_path_does_not_serve_answers_405_naming_every_method_it_does(client) -> None:
    """GET and POST /exchange-rates are two routes: the 405's Allow names both (Starlette's named the first)."""
    response = client.request("OPTIONS", "/exchange-rates", headers=auth("admin"))

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert client.delete("/vocabularies/region", headers=auth("admin")).headers["allow"] == "GET"
    removals = client.request("OPTIONS", "/customers/0/tags/removals", headers=auth("admin"))
    assert removals.headers["allow"] == "POST"  # its own template's, not DELETE /customers/{id}/tags/{tag}'s
