"""Vocabularies an installation configures: defaults, defining, replacing, adding and retiring values, open
kinds, and `unknown` always accepted."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.vocabulary import (ACQUISITION_CHANNELS, DEFAULT_VOCABULARIES, HISTORIC, KINDS, UNKNOWN, Terms,
                               Vocabularies, Vocabulary, vocabulary_id)

ORIGINS = ["paid_search", "organic_search", "email", "social", "referral", "direct_traffic", "display",
           "unknown_origin", "other", "other_publicities", "partner"]  # an export's 11 lead origins


def test_the_defaults_are_todays_rules():
    channels = DEFAULT_VOCABULARIES["acquisition_channel"]
    assert (channels.values, channels.open) == (ACQUISITION_CHANNELS, False)
    assert DEFAULT_VOCABULARIES["industry"].check("随便什么行业") == "随便什么行业"  # open, as free text was
    assert DEFAULT_VOCABULARIES["loss_reason"].check("客户说 139 1234 5678 那位不再负责") != UNKNOWN  # text, as before
    with pytest.raises(DomainError, match="region must not hold an e-mail address"):
        DEFAULT_VOCABULARIES["region"].check("a@b.cn")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("absent", [None, "", "  ", UNKNOWN])
def test_unknown_is_always_accepted(kind, absent):
    closed = Terms(kind, (), open=False)

    assert closed.check(absent) == UNKNOWN


def test_a_vocabulary_has_a_stable_id_from_its_kind(meta_at):
    vocabulary = Vocabulary.define("acquisition_channel", ORIGINS, False, meta_at(0))

    assert vocabulary.id == vocabulary_id("acquisition_channel") != vocabulary_id("touch_channel")
    assert vocabulary.terms.check("paid_search") == "paid_search"
    with pytest.raises(DomainError, match="unknown acquisition channel 'web'"):
        vocabulary.terms.check("web")


@pytest.mark.parametrize(("kind", "values", "message"), [
    ("colour", [], "unknown vocabulary kind 'colour'"),
    ("industry", ["金融", "金融"], "must be unique"),
    ("industry", ["unknown"], "'unknown' is always accepted"),
    ("industry", [" "], "industry must not be empty"),
    ("region", ["wang@example.com"], "region must not hold an e-mail address"),
    ("industry", [f"v{i}" for i in range(501)], "at most 500 values"),
])
def test_define_refusals(meta_at, kind, values, message):
    with pytest.raises(DomainError, match=message):
        Vocabulary.define(kind, values, False, meta_at(0))


def test_add_and_retire_values(meta_at):
    vocabulary = Vocabulary.from_defaults("touch_channel", meta_at(0))
    vocabulary.add("微信", meta_at(1))
    vocabulary.retire("visit", meta_at(2))

    assert vocabulary.terms.check("微信") == "微信"
    assert vocabulary.as_dict()["retired"] == ["visit"]
    with pytest.raises(DomainError, match="unknown touch channel 'visit'"):
        vocabulary.terms.check("visit")
    vocabulary.add("visit", meta_at(3))
    assert vocabulary.as_dict()["retired"] == []
    assert [type(e).__name__ for e in vocabulary.pending_events] == ["Defined", "ValueAdded", "ValueRetired",
                                                                      "ValueAdded"]


def test_add_and_retire_refusals(meta_at):
    vocabulary = Vocabulary.define("industry", ["金融"], False, meta_at(0))

    with pytest.raises(DomainError, match="already has '金融'"):
        vocabulary.add("金融", meta_at(1))
    with pytest.raises(DomainError, match="has no value '零售' in force"):
        vocabulary.retire("零售", meta_at(1))
    with pytest.raises(DomainError, match="already has these values"):
        vocabulary.replace(["金融"], False, meta_at(1))


def test_replace_opens_a_kind_and_retires_dropped_values(meta_at):
    vocabulary = Vocabulary.define("industry", ["金融", "零售"], False, meta_at(0))
    vocabulary.replace(["金融"], True, meta_at(1))

    assert vocabulary.as_dict() == {"kind": "industry", "values": ["金融"], "open": True, "retired": ["零售"]}
    assert vocabulary.terms.check("制造") == "制造"  # open: any dimension


def test_a_replayed_vocabulary_equals_the_one_that_recorded(meta_at, replay):
    vocabulary = Vocabulary.define("loss_reason", ["价格"], False, meta_at(0))
    vocabulary.add("竞品", meta_at(1))
    vocabulary.retire("价格", meta_at(2))

    assert replay(vocabulary.pending_events).as_dict() == vocabulary.as_dict()


def test_vocabularies_give_defaults_for_kinds_not_defined():
    vocabularies = Vocabularies({"industry": Terms("industry", ("金融",), False)})

    assert vocabularies["industry"].values == ("金融",)
    assert vocabularies["touch_channel"] == Terms.default("touch_channel")
    assert HISTORIC["acquisition_channel"].check("retired_channel") == "retired_channel"
