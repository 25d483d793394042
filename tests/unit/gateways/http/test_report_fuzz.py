"""Odd query values on the forecast and inspection routes give a 4xx with a sentence, never a 500 (review of
issue 15: `days=1000000` went before year 1)."""
from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.gateways.http.conftest import auth, open_deal, project, register_customer

AT = "2026-03-01T09:00:00+08:00"

CASES = [
    ("/inspection/inactive", {"days": 1000000}),
    ("/inspection/inactive", {"days": 900000}),
    ("/inspection/inactive", {"as_of": "1900-01-02T00:00:00Z", "days": 3}),
    ("/inspection/slippage", {"to": "1900-01-02T00:00:00Z"}),
    ("/inspection/slippage", {"from": "1899-12-31T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
    ("/inspection/changes", {"to": "9999-12-31T00:00:00Z"}),
    ("/winloss", {"period": "9999-Q4"}),
    ("/winloss", {"period": ""}),
    ("/winloss", {"grain": "季度"}),
    ("/winloss", {"by": ""}),
    ("/inspection/slippage", {"tz": "Mars/Olympus"}),
    ("/inspection/slippage", {"tz": ""}),
    ("/forecast/predict", {"periods": 10**30}),
    ("/forecast/predict", {"periods": "NaN"}),
    ("/forecast/predict", {"level": "nan"}),
    ("/forecast/predict", {"as_of": "2999-12-15T00:00:00Z", "periods": 24}),
    ("/forecast/predict", {"as_of": "1900-01-01T00:00:00Z"}),
    ("/forecast/predict", {"method": ""}),
    ("/forecast/predict", {"grain": ""}),
    ("/forecast/backtest", {"as_of": "1900-01-01T00:00:00Z", "periods": 24}),
    ("/forecast/backtest", {"as_of": "2026-01-01T00:00:00Z", "actual_as_of": "2999-12-31T00:00:00Z", "periods": 24}),
    ("/forecast/backtest", {"as_of": ""}),
]


@pytest.mark.parametrize("path,params", CASES)
def test_odd_values_are_not_a_500(client: TestClient, api: FastAPI, path: str, params: dict) -> None:
    customer = register_customer(client, occurred_at=AT, company="<script>alert(1)</script>")
    open_deal(client, customer, title="<img src=x onerror=alert(1)>", amount="100", expected_close="2026-03-31",
              owner="李娜", occurred_at=AT)
    project(api)
    answer = client.get(path, params=params, headers=auth("admin"))
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert answer.json()["error"], answer.text[:300]  # a sentence
