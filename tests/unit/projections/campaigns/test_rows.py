"""Typed rows and facts: a table row round-trips through the dict `Rows` holds; facts list the wins in force."""

from __future__ import annotations

from uuid import UUID

from domain.marketing import Win
from projections.campaigns.rows import DealFact, Facts, LeadRow, id_text

LEAD = LeadRow("lead-1", "campaign-w", 2, None, None, None)


def test_a_row_round_trips_through_the_dict_rows_hold() -> None:
    stored = LEAD._asdict()

    assert stored == {"lead_id": "lead-1", "campaign_id": "campaign-w", "captured_at": 2, "qualified_at": None,
                      "converted_at": None, "customer_id": None}
    assert LeadRow(**stored) == LEAD


def test_facts_list_the_wins_of_won_deals_only_in_deal_order() -> None:
    d1 = Win("d1", "c1", "campaign-w", 10, 120000)
    d2 = Win("d2", "c2", None, 12, 50000)
    deals = [DealFact("d2", "c2", None, d2), DealFact("d4", "c1", None, None), DealFact("d1", "c1", "campaign-w", d1)]

    assert Facts({}, {}, [], {}, {}, deals).wins == [d2, d1]
    assert Facts({}, {}, [], {}, {}, []).wins == []


def test_ids_are_held_as_text_and_none_stays_none() -> None:
    assert id_text(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert id_text(None) is None
