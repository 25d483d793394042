"""Commands on an installation's vocabularies: set a kind's values (and whether it is open), add or retire one.

A vocabulary is addressed by its kind (its id derives from it, as a pipeline's from its key); a kind nobody
defined yet has its default values, which the first change records before changing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StrictBool

from domain.vocabulary import KINDS, MAX_VALUES, Vocabulary, vocabulary_id
from services.commands.command import Change
from services.commands.field_types import Name


@dataclass(frozen=True, slots=True)
class VocabularyChange(Change):
    aggregate, address = Vocabulary, "kind"
    kind: Literal[KINDS]  # type: ignore[valid-type]

    @property
    def aggregate_id(self) -> UUID:
        return vocabulary_id(self.kind)


@dataclass(frozen=True, slots=True)
class SetVocabulary(VocabularyChange):
    """Replace a kind's values; `open`: any text is accepted too (as a dimension), the values only suggest."""

    values: Annotated[list[Name], Field(max_length=MAX_VALUES)]
    open: StrictBool = False


@dataclass(frozen=True, slots=True)
class AddVocabularyValue(VocabularyChange):
    value: Name


@dataclass(frozen=True, slots=True)
class RetireVocabularyValue(VocabularyChange):
    """New records may no longer use `value`; those that have it keep it."""

    value: Name
