"""Money amounts: Decimal, never negative, in a currency of the ISO 4217 list.

The list comes from `pycountry` (pure data, kept up to date with ISO 4217's amendments) rather than a copy
here that would go stale. ISO 4217 also codes things no deal or budget is priced in; those are refused:
XXX ("no currency involved"), XTS (reserved for testing), the precious metals XAU, XAG, XPD, XPT (troy
ounces of a commodity), the bond-market units XBA–XBD and the units of account XDR (IMF), XUA (ADB), XSU
(SUCRE) and XAD (Arab Accounting Dinar), which no customer pays in. Real currencies with an X code — XAF,
XOF, XCD, XCG, XPF — and the fund codes (CLF, COU, USN, …) that contracts do use stay valid.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import pycountry

from domain.errors import DomainError

_CURRENCY = re.compile(r"[A-Z]{3}")
NOT_MONEY = frozenset({"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XUA", "XSU",
                       "XAD"})
_ISO_4217 = {c.alpha_3: c.name for c in pycountry.currencies}
CURRENCIES = frozenset(_ISO_4217) - NOT_MONEY  # built once: a lookup is one set probe (≈ 0.05 µs)
LIMIT = Decimal(10) ** 15  # a quadrillion: no real deal is larger, and every sum of cents stays exact


def amount(value: Decimal | int | str, what: str = "amount") -> Decimal:
    """Parse a non-negative amount; floats are refused because they cannot hold cents exactly."""
    if isinstance(value, float) or isinstance(value, bool):
        raise DomainError(f"{what} must be a decimal string or integer, not {type(value).__name__}")
    try:
        parsed = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(f"{what} {value!r} is not a number") from None
    if not parsed.is_finite():
        raise DomainError(f"{what} must be finite")
    if parsed < 0:
        raise DomainError(f"{what} must not be negative (got {parsed})")
    if parsed >= LIMIT:
        raise DomainError(f"{what} must be less than {LIMIT:,.0f} (got {parsed})")
    return parsed.copy_abs()  # turns -0 into 0


def currency(code: str) -> str:
    if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
        raise DomainError(f"currency {code!r} must be a three-letter ISO code such as CNY or USD")
    if code not in CURRENCIES:
        if code in NOT_MONEY:
            raise DomainError(f"currency {code!r} is not one a customer pays in (ISO 4217: {_ISO_4217[code]})")
        raise DomainError(f"currency {code!r} is not an ISO 4217 currency code")
    return code
