"""`crm import` checks exchange-rate events as `RecordExchangeRate` would: currencies of ISO 4217, a positive
rate, an id derived from pair and date, and business time at 00:00 UTC of the rate's date."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain.exchange_rates import rate_id
from services.application import CrmApplication
from services.commands import RecordExchangeRate
from services.history import exporter, importer
from services.settings import database_from_url
from tests.conftest import at


@pytest.fixture
def lines(tmp_path: Path) -> list[dict[str, Any]]:
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    source.record_exchange_rate(RecordExchangeRate("USD", "7.1", date(2026, 3, 1), source="ECB"), at(0))
    source.record_exchange_rate(RecordExchangeRate("USD", "7.2", date(2026, 3, 1), source="ECB"), at(1))
    source.record_exchange_rate(RecordExchangeRate("BRL", "1.3", date(2026, 3, 2), source="BCB"), at(1))
    with (tmp_path / "rates.jsonl").open("wb") as out:
        exporter.export_history(source, out)
    source.close()
    return [orjson.loads(line) for line in (tmp_path / "rates.jsonl").read_bytes().splitlines()]


def _import(target: CrmApplication, tmp_path: Path, lines: list[dict[str, Any]]) -> int:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return importer.import_history(target, path, batch=2)


def test_rates_and_their_corrections_import(lines, target, tmp_path) -> None:
    assert [line["type"] for line in lines] == ["crm.ExchangeRate.Quoted", "crm.ExchangeRate.Corrected",
                                                "crm.ExchangeRate.Quoted"]
    assert _import(target, tmp_path, lines) == 3


@pytest.mark.parametrize(("index", "field", "value", "reason"), [
    (0, "rate", "0", "rate must be a positive number"),
    (1, "rate", "-7.2", "rate must be a positive number"),
    (0, "currency", "usd", "currency 'usd' must be a three-letter"),
    (2, "quote", "XAU", "is not one a customer pays in"),
    (0, "source", "", "rate source must not be empty"),
    (0, "occurred_at", "2026-03-01T09:00:00+00:00", "00:00 UTC of its valid_from"),
    (0, "quote", "USD", "not USD into itself"),
])
def test_what_the_command_would_refuse_is_refused_by_line_and_field(lines, target, tmp_path, index, field, value,
                                                                    reason) -> None:
    lines[index]["data"][field] = value

    with pytest.raises(importer.ImportRefused) as refused:
        _import(target, tmp_path, lines)

    assert f"line {index + 1}: " in str(refused.value) and reason in str(refused.value), str(refused.value)
    assert target.event_count() == 0


def test_a_rate_under_another_id_than_its_pair_and_date_give_is_refused(lines, target, tmp_path) -> None:
    lines[2]["data"]["valid_from"] = "2026-03-03"
    lines[2]["data"]["occurred_at"] = "2026-03-03T00:00:00+00:00"

    with pytest.raises(importer.ImportRefused, match=f"has the id {rate_id('BRL', 'CNY', date(2026, 3, 3))}"):
        _import(target, tmp_path, lines)
