"""The exchange-rate read model: each pair's rate per date, and the rates in force at any instant.

`rows` holds the table (a row per pair and date, the latest figure for it); `handlers` (write side) keeps
it from `ExchangeRate.Quoted` and `Corrected`; `queries` answers the rates in force at T (the latest date
≤ T for each currency) and the list. Other read models keep amounts per currency and convert with these
rates only when asked (`domain.exchange_rates.convert`). The names callers use are re-exported here.
"""

from __future__ import annotations

from projections.rates.handlers import RATE_EVENTS, RatesReadModel
from projections.rates.queries import RateListing, RateQueries
from projections.rates.rows import RATES, RateRow

__all__ = ["RATES", "RATE_EVENTS", "RateListing", "RateQueries", "RateRow", "RatesReadModel"]
