"""The external ids read model's table and its typed row (a NamedTuple: a row is written once, at creation).

External ids are identifiers, not text about a person (`domain.external_ids.check_qualified` refuses an
e-mail address as a customer's or lead's): they stay when a customer is forgotten, as the UUIDs do.
"""

from __future__ import annotations

from typing import NamedTuple

from projections.tables import Table


class ExternalIdRow(NamedTuple):
    kind: str  # customer, lead, deal, ticket, campaign
    external_id: str  # "<source>:<id>", as the creation event keeps it
    bare_id: str  # the part after the first colon: the id as the source system shows it
    record_id: str  # the record's UUID
    created_at: int  # business time of the creation, µs since the epoch (answers as of an instant)


EXTERNAL_IDS = Table(
    "external_ids",
    (("kind", "TEXT"), ("external_id", "TEXT"), ("bare_id", "TEXT"), ("record_id", "TEXT"), ("created_at", "BIGINT")),
    key=("kind", "external_id"),
    indexes=(("kind", "bare_id"), ("record_id",)),
    row_type=ExternalIdRow,
)
TABLES = (EXTERNAL_IDS,)
