"""`crm import`'s checks of a vocabulary's events: its id derives from its kind (as `domain.vocabulary.vocabulary_id`
derives it), its values are ones its kind accepts, a value added is new and one retired is in force. The terms
it leaves in `Tracked.terms` are what later lines' channels, regions, industries and loss reasons are checked
against (`engine.HistoryRules.terms`)."""

from __future__ import annotations

from uuid import UUID

from domain.vocabulary import (Terms, Vocabulary, check_value, check_values, require_absent, require_present,
                               vocabulary_id)
from services.history.rules.facts import vocabulary_key
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked


def _defined(rules: Engine, vocabulary: Tracked, kind: str, values: list[str], is_open: bool) -> None:
    if vocabulary_key(kind) != rules.subject:
        raise Refusal("kind", f"vocabulary {kind!r} has the id {vocabulary_id(kind)}, derived from its kind, "
                              f"not {UUID(int=rules.subject)}")
    vocabulary.terms = Terms(kind, tuple(check_values(kind, values)), is_open)


def _replaced(rules: Engine, vocabulary: Tracked, values: list[str], is_open: bool) -> None:
    kind = vocabulary.terms.kind
    vocabulary.terms = Terms(kind, tuple(check_values(kind, values)), is_open)


def _value_added(rules: Engine, vocabulary: Tracked, value: str) -> None:
    terms = vocabulary.terms
    require_absent(terms.kind, terms.values, check_value(terms.kind, value))
    vocabulary.terms = Terms(terms.kind, (*terms.values, value), terms.open)


def _value_retired(rules: Engine, vocabulary: Tracked, value: str) -> None:
    terms = vocabulary.terms
    require_present(terms.kind, terms.values, value)
    vocabulary.terms = Terms(terms.kind, tuple(v for v in terms.values if v != value), terms.open)


RULES: dict[type, Rule] = {
    Vocabulary.Defined: _defined,
    Vocabulary.Replaced: _replaced,
    Vocabulary.ValueAdded: _value_added,
    Vocabulary.ValueRetired: _value_retired,
}
