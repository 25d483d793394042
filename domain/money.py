"""Money amounts: Decimal, never negative, with an ISO currency code."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from domain.errors import DomainError

_CURRENCY = re.compile(r"[A-Z]{3}")
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
    return code
