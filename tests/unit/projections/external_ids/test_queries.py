"""The external ids read model: kind + external id (or the bare id) → record id; incremental = rebuild; a
forgotten customer keeps theirs (an identifier, not personal data)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from uuid import UUID

import pytest

from domain.external_ids import external_uuid
from projections.external_ids import AmbiguousId, ExternalIdQueries, ExternalIdsReadModel, UnknownId
from services.application import CrmApplication
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.history_of_every_event import record_every_event


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[CrmApplication]:
    with closing(CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))) as app:
        record_every_event(app)
        yield app


def _logged(crm: CrmApplication, external_id: str) -> UUID:
    """The id of the record created with `external_id` (a deal's or ticket's: in its customer's partition)."""
    return next(e.originator_id for _, e in crm.read_log() if getattr(e, "external_id", None) == external_id)


def _store(crm: CrmApplication, rebuild: bool = False, batch: int = 3) -> ReadModelStore:
    store = ReadModelStore(crm.database)
    projector = Projector(crm, store, [ExternalIdsReadModel()])
    if rebuild:
        projector.rebuild()
    else:
        while projector.run_batch(batch):
            pass
    return store


def test_every_external_id_of_the_log_is_filed_by_kind_and_a_forgotten_customer_keeps_theirs(
        crm: CrmApplication) -> None:
    summary = ExternalIdQueries(_store(crm)).summary(at(100).occurred_at)
    assert summary == {
        "campaign": {"hubspot:campaign-2026-春季": str(external_uuid("campaign", "hubspot", "campaign-2026-春季"))},
        "customer": {"salesforce:001Dn00000XyZ12": str(external_uuid("customer", "salesforce", "001Dn00000XyZ12"))},
        "deal": {"salesforce:006Dn00000AbCdE": str(_logged(crm, "salesforce:006Dn00000AbCdE"))},
        "lead": {"hubspot:1001": str(external_uuid("lead", "hubspot", "1001"))},
        "ticket": {"zendesk:4711": str(_logged(crm, "zendesk:4711"))},
    }
    assert ExternalIdQueries(_store(crm)).summary(at(7.5).occurred_at).keys() == {"campaign", "ticket"}


def test_applied_in_small_batches_it_equals_a_rebuild(crm: CrmApplication) -> None:
    instants = [at(day).occurred_at for day in (0, 7, 11, 14.2, 100)]
    incremental = [ExternalIdQueries(_store(crm, batch=2)).summary(t) for t in instants]
    rebuilt = [ExternalIdQueries(_store(crm, rebuild=True)).summary(t) for t in instants]
    assert incremental == rebuilt


def test_a_text_resolves_by_uuid_source_id_bare_id_or_a_source_id_not_yet_applied(crm: CrmApplication) -> None:
    queries = ExternalIdQueries(_store(crm))
    ticket = _logged(crm, "zendesk:4711")
    assert queries.resolve("ticket", "zendesk:4711") == ticket == queries.resolve("ticket", "4711")
    assert queries.resolve("ticket", str(ticket)) == ticket
    assert queries.resolve("customer", "salesforce:001-new") == external_uuid("customer", "salesforce", "001-new")
    with pytest.raises(UnknownId, match="once the external ids read model has applied it"):  # in its customer's
        queries.resolve("deal", "salesforce:006-new")  # partition: the text alone does not say which id
    with pytest.raises(UnknownId, match="no deal with id or external id '4711'"):
        queries.resolve("deal", "4711")
    assert queries.external_ids([ticket, UUID(int=1)]) == {ticket: "zendesk:4711"}


def test_a_bare_id_two_sources_share_is_ambiguous_and_lists_both(crm: CrmApplication) -> None:
    from services.commands import CaptureLead
    other = crm.capture_lead(CaptureLead("赵六", "华南", "零售", "web", source="salesforce", external_id="1001"),
                             at(20))
    with pytest.raises(AmbiguousId) as ambiguous:
        ExternalIdQueries(_store(crm)).resolve("lead", "1001")
    assert [(c.external_id, c.record_id) for c in ambiguous.value.candidates] == [
        ("hubspot:1001", external_uuid("lead", "hubspot", "1001")), ("salesforce:1001", other)]
    assert "say which one" in str(ambiguous.value)
