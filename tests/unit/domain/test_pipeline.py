"""Pipeline: the ordered open stages a deal moves through; won/lost are terminal and reserved."""

from __future__ import annotations

import re

import pytest

from domain.errors import DomainError
from domain.pipeline import DEFAULT_PIPELINES, Pipeline, pipeline_id

SALES_KEYS = ["lead", "first_contact", "needs_analysis", "proposal", "negotiation", "contract_signed"]


def test_define_sales_pipeline_keeps_stage_order_and_labels(sales_pipeline, meta_at):
    assert sales_pipeline.key == "sales"
    assert sales_pipeline.name == "销售漏斗 / Sales"
    assert sales_pipeline.stage_keys == SALES_KEYS
    assert sales_pipeline.label("proposal") == "提供方案 / Proposal"
    assert sales_pipeline.index("negotiation") == 4
    (defined,) = sales_pipeline.pending_events
    assert isinstance(defined, Pipeline.Defined)
    assert defined.actor == "setup"
    assert defined.occurred_at == meta_at(-30).occurred_at
    assert [s["key"] for s in defined.stages] == SALES_KEYS


def test_pipeline_id_is_derived_from_key_so_defining_twice_gives_same_id(meta_at):
    name, stages = DEFAULT_PIPELINES["sales"]
    first = Pipeline.define("sales", name, stages, meta_at(0))
    second = Pipeline.define("sales", name, stages, meta_at(1))
    assert first.id == second.id == pipeline_id("sales")
    assert pipeline_id("sales") != pipeline_id("marketing")


def test_terminal_stages_have_labels_but_are_not_open_stages(sales_pipeline):
    assert sales_pipeline.label("won") == "赢单 / Won"
    assert sales_pipeline.label("lost") == "输单 / Lost"
    assert "won" not in sales_pipeline.stage_keys
    with pytest.raises(DomainError, match="unknown stage 'won'"):
        sales_pipeline.index("won")


def test_unknown_stage_message_lists_the_valid_stages(sales_pipeline):
    expected = "unknown stage 'qualification' in pipeline 'sales'; stages are: " + ", ".join(SALES_KEYS)
    with pytest.raises(DomainError, match=re.escape(expected)):
        sales_pipeline.index("qualification")
    with pytest.raises(DomainError, match=re.escape(expected)):
        sales_pipeline.label("qualification")


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([("a", "A"), ("a", "A again")], "stage keys must be unique: ['a', 'a']"),
        ([("won", "赢"), ("b", "B")], "stage key 'won' is reserved for the terminal stage"),
        ([("a", "A"), ("lost", "输")], "stage key 'lost' is reserved for the terminal stage"),
        ([("only", "Only one")], "a pipeline needs at least two open stages"),
        ([("Proposal", "P"), ("b", "B")], "stage key 'Proposal' must be lower-case letters, digits or _ (max 40)"),
        ([("1st", "P"), ("b", "B")], "stage key '1st' must be lower-case letters"),
        ([("a" * 41, "long"), ("b", "B")], "must be lower-case letters, digits or _ (max 40)"),
        ([("a", "   "), ("b", "B")], "stage label must not be empty"),
    ],
)
def test_define_refuses_bad_stage_lists(meta_at, stages, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        Pipeline.define("custom", "自定义", stages, meta_at(0))


def test_define_refuses_blank_name_and_bad_pipeline_key(meta_at):
    stages = [("a", "A"), ("b", "B")]
    with pytest.raises(DomainError, match="pipeline name must not be empty"):
        Pipeline.define("custom", " ", stages, meta_at(0))
    with pytest.raises(DomainError, match=re.escape("stage key 'Sales' must be lower-case")):
        Pipeline.define("Sales", "Sales", stages, meta_at(0))


def test_stage_key_of_forty_characters_is_accepted(meta_at):
    key = "a" * 40
    pipeline = Pipeline.define("custom", "Custom", [(key, "Long"), ("b", "B")], meta_at(0))
    assert pipeline.stage_keys == [key, "b"]


def test_rename_stage_records_event_and_changes_label(sales_pipeline, meta_at):
    sales_pipeline.rename_stage("proposal", "  报价 / Quote  ", meta_at(1, correlation_id="req-7"))
    assert sales_pipeline.label("proposal") == "报价 / Quote"
    assert sales_pipeline.stage_keys == SALES_KEYS  # renaming never moves or re-keys a stage
    event = sales_pipeline.pending_events[-1]
    assert isinstance(event, Pipeline.StageRenamed)
    assert (event.stage, event.label) == ("proposal", "报价 / Quote")
    assert (event.actor, event.correlation_id) == ("李娜", "req-7")


def test_rename_does_not_rewrite_the_defined_event(sales_pipeline, meta_at):
    defined = sales_pipeline.pending_events[0]
    sales_pipeline.rename_stage("proposal", "报价", meta_at(1))
    assert defined.stages[3] == {"key": "proposal", "label": "提供方案 / Proposal"}


def test_rename_refuses_unknown_stage_and_blank_label(sales_pipeline, meta_at, refuse):
    refuse(sales_pipeline, "unknown stage 'quote'.*stages are: lead, first_contact",
           lambda: sales_pipeline.rename_stage("quote", "报价", meta_at(1)))
    refuse(sales_pipeline, "stage label must not be empty",
           lambda: sales_pipeline.rename_stage("proposal", "  ", meta_at(1)))
    refuse(sales_pipeline, "unknown stage 'won'",
           lambda: sales_pipeline.rename_stage("won", "成交", meta_at(1)))


def test_insert_stage_after_given_stage(sales_pipeline, meta_at):
    sales_pipeline.insert_stage("demo", "产品演示 / Demo", "needs_analysis", meta_at(1))
    assert sales_pipeline.stage_keys == [
        "lead", "first_contact", "needs_analysis", "demo", "proposal", "negotiation", "contract_signed"
    ]
    event = sales_pipeline.pending_events[-1]
    assert isinstance(event, Pipeline.StageInserted)
    assert (event.stage, event.label, event.position) == ("demo", "产品演示 / Demo", 3)


def test_insert_stage_first_when_after_is_none(sales_pipeline, meta_at):
    sales_pipeline.insert_stage("prospect", "意向 / Prospect", None, meta_at(1))
    assert sales_pipeline.stage_keys[:2] == ["prospect", "lead"]
    assert sales_pipeline.pending_events[-1].position == 0


def test_insert_stage_after_last_appends(sales_pipeline, meta_at):
    sales_pipeline.insert_stage("onboarding", "交付 / Onboarding", "contract_signed", meta_at(1))
    assert sales_pipeline.stage_keys[-1] == "onboarding"


@pytest.mark.parametrize(
    ("stage", "after", "message"),
    [
        ("proposal", "lead", "stage 'proposal' already exists in pipeline 'sales'"),
        ("won", "lead", "stage key 'won' is reserved for the terminal stage"),
        ("lost", None, "stage key 'lost' is reserved for the terminal stage"),
        ("Demo", "lead", "stage key 'Demo' must be lower-case"),
        ("demo", "qualification", "unknown stage 'qualification' in pipeline 'sales'; stages are: lead,"),
    ],
)
def test_insert_stage_refusals(sales_pipeline, meta_at, refuse, stage, after, message):
    refuse(sales_pipeline, re.escape(message),
           lambda: sales_pipeline.insert_stage(stage, "新阶段", after, meta_at(1)))


def test_insert_stage_refuses_blank_label(sales_pipeline, meta_at, refuse):
    refuse(sales_pipeline, "stage label must not be empty",
           lambda: sales_pipeline.insert_stage("demo", "", "lead", meta_at(1)))


def test_pipeline_change_before_its_last_event_is_refused(sales_pipeline, meta_at, refuse):
    sales_pipeline.rename_stage("lead", "线索", meta_at(5))
    refuse(sales_pipeline, "is before this Pipeline's last event",
           lambda: sales_pipeline.rename_stage("proposal", "报价", meta_at(4)))


def test_pipeline_replay_rebuilds_stages(sales_pipeline, meta_at, assert_replays):
    sales_pipeline.insert_stage("demo", "产品演示 / Demo", "needs_analysis", meta_at(1))
    sales_pipeline.rename_stage("demo", "演示", meta_at(2))
    sales_pipeline.insert_stage("prospect", "意向", None, meta_at(3))
    rebuilt = assert_replays(sales_pipeline)
    assert rebuilt.stage_keys[0] == "prospect"
    assert rebuilt.label("demo") == "演示"
    assert rebuilt.version == 4


def test_stage_key_with_trailing_newline_is_refused(sales_pipeline, meta_at):
    with pytest.raises(DomainError, match="must be lower-case letters"):
        sales_pipeline.insert_stage("demo\n", "演示", "lead", meta_at(1))


def test_renaming_a_stage_to_its_current_label_is_refused(sales_pipeline, meta_at) -> None:
    with pytest.raises(DomainError, match="already labelled"):
        sales_pipeline.rename_stage("proposal", " 提供方案 / Proposal ", meta_at(1))


def test_a_stages_forecast_defaults_are_set_by_their_own_event(sales_pipeline, meta_at) -> None:
    assert sales_pipeline.stage_forecast("contract_signed").to_dict() == {"probability": 86,
                                                                          "forecast_category": "commit"}
    sales_pipeline.set_stage_forecast("proposal", 60, "best_case", meta_at(0))
    assert sales_pipeline.stage_forecast("proposal").to_dict() == {"probability": 60, "forecast_category": "best_case"}
    with pytest.raises(DomainError, match="already defaults"):
        sales_pipeline.set_stage_forecast("proposal", 60, "best_case", meta_at(1))
    with pytest.raises(DomainError, match="unknown stage"):
        sales_pipeline.set_stage_forecast("won", 100, "commit", meta_at(1))
    sales_pipeline.insert_stage("demo", "演示", "proposal", meta_at(2))  # positions move; a set default stays
    assert sales_pipeline.stage_forecast("proposal").probability == 60
    assert sales_pipeline.stage_forecast("contract_signed").probability == 88
