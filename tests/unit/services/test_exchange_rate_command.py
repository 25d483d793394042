"""`RecordExchangeRate`: a new pair and date is recorded, the same figure again changes nothing, another figure
is a correction; the quote defaults to the reporting currency (CRM_REPORTING_CURRENCY, CNY by default)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import DomainError
from domain.exchange_rates import ExchangeRate, rate_id
from services.application import CrmApplication
from services.commands import RecordExchangeRate
from services.settings import SettingsError, database_from_url
from tests.conftest import at


def _app() -> CrmApplication:
    return CrmApplication(database_from_url("memory://"))


def test_recorded_then_unchanged_then_corrected() -> None:
    crm, day = _app(), date(2026, 3, 1)
    command = RecordExchangeRate("USD", "7.1", day, source="ECB")

    assert crm.handle(command, at(0)) == (rate_id("USD", "CNY", day), "recorded")
    assert crm.handle(RecordExchangeRate("USD", "7.10", day), at(1)) == (rate_id("USD", "CNY", day), "unchanged")
    assert crm.handle(RecordExchangeRate("USD", "7.2", day, source="ECB 2"), at(2))[1] == "corrected"
    rate = crm.get(ExchangeRate, rate_id("USD", "CNY", day))
    assert (str(rate.rate), rate.source, rate.version) == ("7.2", "ECB 2", 2)
    assert crm.event_count() == 2


def test_the_quote_defaults_to_the_reporting_currency(monkeypatch) -> None:
    monkeypatch.setenv("CRM_REPORTING_CURRENCY", "EUR")
    crm, day = _app(), date(2026, 3, 1)

    crm.handle(RecordExchangeRate("USD", "0.92", day), at(0))

    assert crm.get(ExchangeRate, rate_id("USD", "EUR", day)).quote == "EUR"


def test_a_reporting_currency_that_is_no_currency_stops_the_start(monkeypatch) -> None:
    monkeypatch.setenv("CRM_REPORTING_CURRENCY", "XAU")
    with pytest.raises(SettingsError, match="CRM_REPORTING_CURRENCY"):
        _app()


def test_a_bad_rate_is_refused_and_nothing_written() -> None:
    crm = _app()
    with pytest.raises(DomainError, match="positive"):
        crm.handle(RecordExchangeRate("USD", "0", date(2026, 3, 1)), at(0))
    assert crm.event_count() == 0


def test_many_rates_are_saved_in_one_transaction_with_each_outcome(monkeypatch) -> None:
    crm, day = _app(), date(2026, 3, 1)
    crm.handle(RecordExchangeRate("USD", "7.1", day), at(0))
    crm.handle(RecordExchangeRate("JPY", "0.047", day), at(0))
    saves: list[int] = []
    save = crm.save_new
    monkeypatch.setattr(crm, "save_new", lambda *aggregates: saves.append(len(aggregates)) or save(*aggregates))

    outcomes = crm.record_exchange_rates([RecordExchangeRate("USD", "7.2", day), RecordExchangeRate("JPY", "0.047", day),
                                          RecordExchangeRate("EUR", "7.8", day)], at(1))

    assert outcomes == ["corrected", "unchanged", "recorded"]
    assert saves == [2]  # one save, of the two rates that change
    assert crm.event_count() == 4


def test_many_rates_of_which_one_is_refused_write_none() -> None:
    crm, day = _app(), date(2026, 3, 1)

    with pytest.raises(DomainError):
        crm.record_exchange_rates([RecordExchangeRate("USD", "7.2", day), RecordExchangeRate("EUR", "-1", day)],
                                  at(0))

    assert crm.event_count() == 0
