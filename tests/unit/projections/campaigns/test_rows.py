"""The facts a query loads list the wins in force; ids are held as text."""

from __future__ import annotations

from uuid import UUID

from domain.marketing import Win
from projections.campaigns.rows import DealFact, Facts, id_text


def test_facts_list_the_wins_of_won_deals_only_in_deal_order() -> None:
    d1 = Win("d1", "c1", "campaign-w", 10, 120000)
    d2 = Win("d2", "c2", None, 12, 50000)
    deals = [DealFact("d2", "c2", None, d2), DealFact("d4", "c1", None, None), DealFact("d1", "c1", "campaign-w", d1)]

    assert Facts({}, {}, [], {}, {}, deals).wins == [d2, d1]
    assert Facts({}, {}, [], {}, {}, []).wins == []


def test_ids_are_held_as_text_and_none_stays_none() -> None:
    assert id_text(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert id_text(None) is None
