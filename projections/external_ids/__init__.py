"""The external ids read model: which record another system's id names (kind + "source:id", or the bare id) →
its UUID, so every lookup of a customer, lead, deal, ticket or campaign can take the id its user knows.

`handlers` (write side) files each creation event that carries an external id; `queries` resolves a text to
a record id, saying which records an ambiguous bare id names. The names callers use are re-exported here.
"""

from __future__ import annotations

from projections.external_ids.handlers import ExternalIdsReadModel
from projections.external_ids.queries import AmbiguousId, Candidate, ExternalIdQueries, UnknownId

__all__ = ["AmbiguousId", "Candidate", "ExternalIdQueries", "ExternalIdsReadModel", "UnknownId"]
