"""Meta (business time, actor, correlation id), the business-time ordering rule, and money parsing."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pycountry
import pytest

from domain import money
from domain.base import Meta, require_choice, require_text
from domain.customer import Customer
from domain.errors import DomainError

SHANGHAI = timezone(timedelta(hours=8))

# --- Meta ------------------------------------------------------------------------------------------


def test_naive_datetime_is_refused():
    with pytest.raises(DomainError, match="occurred_at must be a datetime with a time zone"):
        Meta(occurred_at=datetime(2026, 3, 1, 9, 0), actor="李娜")


@pytest.mark.parametrize("instant", [
    datetime(1, 1, 1, tzinfo=timezone.utc), datetime(1899, 12, 31, 23, tzinfo=SHANGHAI),  # 1899-12-31T15:00Z
    datetime(3000, 1, 1, tzinfo=timezone.utc), datetime(9999, 1, 1, tzinfo=SHANGHAI),
])
def test_business_time_outside_1900_to_2999_is_refused(instant):
    with pytest.raises(DomainError, match=re.escape("occurred_at must be between 1900-01-01 and 2999-12-31 (UTC)")):
        Meta(occurred_at=instant, actor="李娜")


@pytest.mark.parametrize("actor", ["", "   ", "\t\n"])
def test_empty_actor_is_refused(actor):
    with pytest.raises(DomainError, match="actor must not be empty"):
        Meta(actor=actor)


def test_fields_normalise_business_time_to_utc_and_keep_actor_and_correlation():
    meta = Meta(occurred_at=datetime(2026, 3, 1, 17, 0, tzinfo=SHANGHAI), actor="李娜", correlation_id="req-1")
    fields = meta.fields()
    assert fields == {
        "occurred_at": datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc),
        "actor": "李娜",
        "correlation_id": "req-1",
    }
    assert fields["occurred_at"].tzinfo == timezone.utc


def test_default_meta_is_now_in_utc_by_system_with_fresh_correlation_ids():
    before = datetime.now(timezone.utc)
    first, second = Meta(), Meta()
    after = datetime.now(timezone.utc)
    assert before <= first.occurred_at <= after
    assert first.occurred_at.utcoffset() == timedelta(0)
    assert first.actor == "system"
    assert first.correlation_id != second.correlation_id
    assert re.fullmatch(r"[0-9a-f]{32}", first.correlation_id)


def test_meta_is_immutable():
    meta = Meta(actor="李娜")
    with pytest.raises(FrozenInstanceError):
        meta.actor = "王伟"  # type: ignore[misc]


# --- business time never runs backwards (CrmAggregate._record) -------------------------------------


@pytest.fixture
def customer(meta_at) -> Customer:
    customer = Customer.register("周杰", "", "华南", "金融", "web", meta_at(0))
    customer.add_tag("VIP客户", meta_at(2))
    return customer


def test_event_before_last_event_is_refused_with_both_instants(customer, meta_at, refuse):
    refuse(customer, re.escape("occurred_at 2026-03-02T09:00:00+00:00 is before this Customer's last event at "
                               "2026-03-03T09:00:00+00:00"),
           lambda: customer.add_tag("老客户", meta_at(1)))


def test_ordering_compares_instants_not_wall_clocks(customer, refuse):
    # 17:59 in Shanghai on 3 March is 09:59 UTC: later on the wall clock than the last event's 09:00,
    # and also later as an instant, so it is accepted ...
    customer.add_tag("A", Meta(occurred_at=datetime(2026, 3, 3, 17, 59, tzinfo=SHANGHAI), actor="李娜"))
    assert customer.last_occurred_at == datetime(2026, 3, 3, 9, 59, tzinfo=timezone.utc)
    # ... while 10:00 in Shanghai (02:00 UTC) reads later than 09:59 but is an earlier instant: refused
    refuse(customer, "is before this Customer's last event",
           lambda: customer.add_tag("B", Meta(occurred_at=datetime(2026, 3, 3, 10, 0, tzinfo=SHANGHAI), actor="李娜")))


def test_event_at_same_instant_as_last_event_is_accepted(customer, meta_at):
    customer.add_tag("同一时刻", meta_at(2))
    assert "同一时刻" in customer.tags
    assert customer.version == 3


def test_imported_history_keeps_business_time_separate_from_record_time():
    recorded_after = datetime.now(timezone.utc)
    customer = Customer.register("周杰", "", "华南", "金融", "web", Meta(
        occurred_at=datetime(2019, 5, 4, 8, 0, tzinfo=timezone.utc), actor="import"))
    (registered,) = customer.pending_events
    assert registered.occurred_at == datetime(2019, 5, 4, 8, 0, tzinfo=timezone.utc)
    assert registered.timestamp >= recorded_after
    assert customer.last_occurred_at == registered.occurred_at


# --- text and choices ------------------------------------------------------------------------------


def test_require_text_strips_and_refuses_blank():
    assert require_text("  李娜 ", "owner") == "李娜"
    with pytest.raises(DomainError, match="owner must not be empty"):
        require_text("\u3000", "owner")  # a full-width space typed with a Chinese IME is still blank
    with pytest.raises(DomainError, match="owner must not be empty"):
        require_text(None, "owner")  # type: ignore[arg-type]


def test_require_choice_lists_choices_sorted():
    assert require_choice("b", ("c", "b", "a"), "letter") == "b"
    with pytest.raises(DomainError, match=re.escape("unknown letter 'z'; expected one of: a, b, c")):
        require_choice("z", ("c", "b", "a"), "letter")


# --- money -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.50", Decimal("12.50")), (100, Decimal(100)), (Decimal("0.01"), Decimal("0.01")), ("0", Decimal(0)),
     ("1e3", Decimal(1000))],
)
def test_amount_parses_exact_decimals(value, expected):
    parsed = money.amount(value)
    assert parsed == expected
    assert isinstance(parsed, Decimal)


def test_amount_keeps_cents_exactly():
    assert money.amount("0.10") + money.amount("0.20") == Decimal("0.30")
    assert str(money.amount("12.50")) == "12.50"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.1, "price must be a decimal string or integer, not float"),
        (float("nan"), "price must be a decimal string or integer, not float"),
        (True, "price must be a decimal string or integer, not bool"),
        ("NaN", "price must be finite"),
        ("sNaN", "price must be finite"),
        (Decimal("NaN"), "price must be finite"),
        ("Infinity", "price must be finite"),
        ("-Infinity", "price must be finite"),
        ("-5", "price must not be negative (got -5)"),
        (-1, "price must not be negative (got -1)"),
        ("12,50", "price '12,50' is not a number"),
        ("", "price '' is not a number"),
        (None, "price None is not a number"),
    ],
)
def test_amount_refusals_name_the_problem(value, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        money.amount(value, "price")


@pytest.mark.parametrize("code", ["CNY", "USD", "EUR", "XAF", "XOF", "XCD", "XCG", "XPF", "CLF"])
def test_currency_accepts_iso_codes(code):
    assert money.currency(code) == code


@pytest.mark.parametrize("code", ["cny", "US", "USDT", "", " USD", "U$D", 840, None])
def test_currency_refuses_non_iso_codes(code):
    with pytest.raises(DomainError, match=re.escape(f"currency {code!r} must be a three-letter ISO code")):
        money.currency(code)


@pytest.mark.parametrize("code", ["ABC", "RMB", "ZZZ", "DEM", "USS"])
def test_currency_refuses_codes_iso_4217_does_not_list(code):
    with pytest.raises(DomainError, match=re.escape(f"currency {code!r} is not an ISO 4217 currency code")):
        money.currency(code)


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR",
                                  "XUA", "XSU", "XAD"])
def test_currency_refuses_iso_4217_codes_that_are_no_money(code):
    with pytest.raises(DomainError, match=re.escape(f"currency {code!r} is not one a customer pays in (ISO 4217: ")):
        money.currency(code)


def test_every_other_iso_4217_code_is_a_currency():
    assert len(money.CURRENCIES) > 150 and money.CURRENCIES.isdisjoint(money.NOT_MONEY)
    assert money.NOT_MONEY <= {c.alpha_3 for c in pycountry.currencies}  # no typo among the refused codes


def test_currency_with_trailing_newline_is_refused():
    with pytest.raises(DomainError, match="must be a three-letter ISO code"):
        money.currency("USD\n")


def test_one_correlation_id_can_span_several_aggregates():
    # correlation ids group the events of one request; they are not aggregate ids
    meta = Meta(actor="李娜", correlation_id="req-9")
    a = Customer.register("甲", "", "华东", "金融", "web", meta)
    b = Customer.register("乙", "", "华东", "金融", "web", meta, id=uuid4())
    assert a.id != b.id
    assert a.pending_events[0].correlation_id == b.pending_events[0].correlation_id == "req-9"


@pytest.mark.parametrize("occurred_at", [None, "2026-03-01T09:00:00+00:00", 1767258000])
def test_occurred_at_that_is_not_a_datetime_is_a_domain_error(occurred_at: object) -> None:
    with pytest.raises(DomainError, match="occurred_at must be a datetime"):
        Meta(occurred_at=occurred_at)


def test_actor_is_stripped_and_must_be_text() -> None:
    assert Meta(actor="  李娜 ").actor == "李娜"
    with pytest.raises(DomainError, match="actor must not be empty"):
        Meta(actor=None)


def test_text_with_a_nul_character_is_refused_before_any_event() -> None:
    customer = Customer.register("张三", "", "华东", "零售", "web", Meta())
    with pytest.raises(DomainError, match="summary must not contain NUL characters"):
        customer.log_touch("phone", "inbound", "a\x00b", Meta())
    assert len(customer.pending_events) == 1
    with pytest.raises(DomainError, match="name must not contain NUL characters"):
        Customer.register("张\x00三", "", "华东", "零售", "web", Meta())


def test_an_amount_of_a_quadrillion_or_more_is_refused() -> None:
    assert money.amount("999999999999999.99") == Decimal("999999999999999.99")
    with pytest.raises(DomainError, match="amount must be less than 1,000,000,000,000,000"):
        money.amount(10**15)
