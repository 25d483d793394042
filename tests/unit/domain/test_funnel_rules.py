"""What a funnel's numbers mean (reached, conversion, drop-off, win rate, cycle, bottleneck, stuck), on plain
numbers: every path that computes a funnel applies these, so the read model and the replay agree."""

from __future__ import annotations

import pytest

from domain.funnel_rules import (NO_DECIDED_ITEMS, NO_ITEM_ENTERED, NO_LOSSES_RECORDED, STUCK_DAYS, StageOutcome,
                                 average_cycle, bottleneck, conversion, drop_off, reached, stage_conversion, stage_conversion_note,
                                 stage_levels, stage_outcomes, win_rate, win_rate_note)
from domain.pipeline import LOST, WON


def test_won_is_the_level_after_every_open_stage_and_lost_is_no_level() -> None:
    levels = stage_levels(["lead", "proposal", "contract_signed"])

    assert levels == {"lead": 0, "proposal": 1, "contract_signed": 2, WON: 3}
    assert LOST not in levels


def test_an_item_reached_every_level_up_to_its_furthest_even_skipped_ones() -> None:
    furthest = {0: 2, 2: 1, 3: 4}  # two stayed in the first stage, one got to the third, four were won

    assert reached(furthest, 4) == [7, 5, 5, 4]
    assert reached({}, 3) == [0, 0, 0]


def test_conversion_and_drop_off_are_shares_of_those_that_reached_the_stage() -> None:
    assert conversion(4, 1) == 0.25 and drop_off(0.25) == 0.75
    assert conversion(2, 2) == 1.0 and conversion(4, 0) == 0.0  # 0 of 4 is a rate: all lost
    assert conversion(0, 0) is None and drop_off(None) is None  # 0 of 0 is none: it would read as "all lost"


def test_win_rate_counts_decided_items_only() -> None:
    assert win_rate(1, 3) == 0.25 and win_rate(0, 2) == 0.0 and win_rate_note(1, 3) is None
    assert (win_rate(0, 0), win_rate_note(0, 0)) == (None, NO_DECIDED_ITEMS)  # nothing decided yet: not 0%


def test_a_win_rate_without_any_loss_is_missing_not_100_percent() -> None:
    assert (win_rate(5, 0), win_rate_note(5, 0)) == (None, NO_LOSSES_RECORDED)


def test_each_stage_splits_its_items_into_advanced_lost_and_still_open() -> None:
    furthest = {0: 5, 1: 3, 2: 2}  # levels: lead, proposal, won; 2 of the 5 in lead and 1 in proposal were lost
    outcomes = stage_outcomes(furthest, {0: 2, 1: 1}, 2)

    assert outcomes == [StageOutcome(10, 5, 2, 3), StageOutcome(5, 2, 1, 2)]
    assert all(o.reached == o.advanced + o.lost + o.still_open for o in outcomes)


def test_stage_conversion_leaves_open_items_out_of_both_parts() -> None:
    assert stage_conversion(StageOutcome(10, 5, 2, 3)) == pytest.approx(5 / 7)  # not 5 / 10
    assert stage_conversion(StageOutcome(4, 0, 0, 4)) is None
    assert stage_conversion_note(StageOutcome(4, 0, 0, 4)) == f"{NO_DECIDED_ITEMS}; 4 still open"
    assert stage_conversion_note(StageOutcome(0, 0, 0, 0)) == "no item reached it"
    assert stage_conversion(StageOutcome(4, 3, 0, 1), losses_recorded=False) is None
    assert stage_conversion_note(StageOutcome(4, 3, 0, 1), losses_recorded=False) == NO_LOSSES_RECORDED


def test_a_stage_every_item_skipped_has_no_conversion_not_100_percent() -> None:
    skipped = StageOutcome(2, 2, 0, 0)  # both went past it without ever being in it (imported histories)

    assert stage_conversion(skipped) == 1.0  # what "reached" alone would say
    assert stage_conversion(skipped, entered=False) is None
    assert stage_conversion_note(skipped, entered=False) == f"{NO_ITEM_ENTERED}: the 2 that reached it skipped it"
    assert stage_conversion_note(StageOutcome(0, 0, 0, 0), entered=False) == "no item reached it"


def test_average_cycle_is_over_won_items() -> None:
    assert average_cycle(30.0, 3) == pytest.approx(10.0)
    assert average_cycle(0, 0) is None


def test_the_bottleneck_converts_worst_the_earlier_stage_on_a_tie() -> None:
    assert bottleneck([("lead", 0.9), ("proposal", 0.3), ("negotiation", 0.3), ("contract_signed", None)]) == "proposal"
    assert bottleneck([("lead", None)]) is None


def test_items_are_stuck_after_a_month_in_one_stage_by_default() -> None:
    assert STUCK_DAYS == 30.0
