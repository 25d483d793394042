"""`crm import`'s checks of an exchange rate's events: its id derives from its pair and date (as
`domain.exchange_rates.rate_id` derives it), so that a file cannot hold two rates of one pair for one date
under two ids, and a correction names the pair and date of the rate it corrects."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.exchange_rates import ExchangeRate, rate_id, require_pair
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _rate(rules: Engine, rate: Tracked, currency: str, quote: str, valid_from: str) -> None:
    require_pair(currency, quote)
    derived = rate_id(currency, quote, date.fromisoformat(valid_from))
    if derived.int != rules.subject:
        raise Refusal("subject", f"the rate of {currency}/{quote} on {valid_from} has the id {derived}, derived "
                                 f"from its pair and date, not {UUID(int=rules.subject)}")


RULES: dict[type, Rule] = {ExchangeRate.Quoted: _rate, ExchangeRate.Corrected: _rate}
