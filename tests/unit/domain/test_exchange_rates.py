"""Exchange rates as dated facts: positive decimals between two ISO 4217 currencies, in force from 00:00 UTC
of their date, corrected in place; conversion sums per currency first and never adds an unconverted amount."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from domain.errors import DomainError
from domain.exchange_rates import (Converted, ExchangeRate, RateInForce, add_sums, convert, convert_cents, rate_id,
                                   require_rate)
from tests.conftest import at

DAY = date(2026, 3, 2)


def test_a_rate_is_in_force_from_midnight_utc_of_its_date_whatever_the_instant_it_was_recorded() -> None:
    rate = ExchangeRate.quote_rate("USD", "CNY", "7.1234", DAY, "人民银行", at(40))

    [event] = rate.collect_events()
    assert event.occurred_at == datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert (event.currency, event.quote, event.rate, event.valid_from) == ("USD", "CNY", Decimal("7.1234"), DAY)
    assert rate.id == rate_id("USD", "CNY", DAY)


def test_a_correction_replaces_the_figure_and_keeps_the_date() -> None:
    rate = ExchangeRate.quote_rate("USD", "CNY", "7.1234", DAY, "ECB", at(0))
    rate.correct("7.2", "ECB (revised)", at(50))

    assert (rate.rate, rate.source, rate.valid_from) == (Decimal("7.2"), "ECB (revised)", DAY)
    assert rate.collect_events()[-1].occurred_at == datetime(2026, 3, 2, tzinfo=timezone.utc)
    with pytest.raises(DomainError, match="already 7.2"):
        rate.correct("7.20", "ECB", at(51))


@pytest.mark.parametrize(("rate", "reason"), [
    ("0", "positive"), ("-1", "positive"), ("NaN", "positive"), (7.1, "not float"), ("abc", "not a number"),
    ("1e10", "between"), ("1e-10", "between"), ("1.0000000000001", "12 decimal places"),
])
def test_a_rate_is_a_positive_decimal_within_bounds(rate, reason) -> None:
    with pytest.raises(DomainError, match=reason):
        require_rate(rate)


@pytest.mark.parametrize(("currency", "quote", "reason"), [
    ("usd", "CNY", "three-letter"), ("USD", "XAU", "not one a customer pays in"), ("CNY", "CNY", "into itself"),
    ("ABC", "CNY", "not an ISO 4217"),
])
def test_a_pair_is_two_different_currencies_of_iso_4217(currency, quote, reason) -> None:
    with pytest.raises(DomainError, match=reason):
        ExchangeRate.quote_rate(currency, quote, "1", DAY, "ECB", at(0))


def test_a_source_is_named_and_a_date_is_within_business_years() -> None:
    with pytest.raises(DomainError, match="source must not be empty"):
        ExchangeRate.quote_rate("USD", "CNY", "7", DAY, " ", at(0))
    with pytest.raises(DomainError, match="valid_from must be between"):
        ExchangeRate.quote_rate("USD", "CNY", "7", date(1800, 1, 1), "ECB", at(0))


def test_conversion_sums_each_currency_then_converts_once_half_even_and_keeps_the_rest_apart() -> None:
    rates = {"USD": RateInForce(Decimal("7.1"), DAY), "BRL": RateInForce(Decimal("1.25"), DAY)}

    converted = convert({"CNY": 100, "USD": 1000, "BRL": 2, "JPY": 5000, "EUR": 0}, rates, "CNY")

    assert converted == Converted("CNY", 100 + 7100 + 2, {"JPY": 5000})  # 2 × 1.25 = 2.5 → 2 (half-even)
    assert not converted.complete
    assert convert_cents(3, Decimal("1.5")) == 4  # 4.5 → 4
    assert convert({}, rates, "CNY") == Converted("CNY", 0, {})


def test_per_currency_sums_add_and_drop_what_comes_to_zero() -> None:
    assert add_sums({"CNY": 5, "USD": 3}, {"USD": 3, "BRL": 1}, -1) == {"CNY": 5, "BRL": -1}
