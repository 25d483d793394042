"""Property: on PostgreSQL, read models fed partition by partition — in random interleavings by one consumer,
or by three concurrent workers (threads, one connection and partition each) sharing rows — == a rebuild by
the log follower == replayed up to T."""

import random

from hypothesis import HealthCheck, given, settings, strategies as st

from services.application import CrmApplication
from services.commands import CaptureLead, PlanCampaign
from services.projection_runtime.partitioned import PartitionedProjector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.equivalence import (apply_concurrently, batch_sizes, instants, operations, partition_streams,
                                       run_partitioned_example, sealed_log)
from tests.unit.services.projection_runtime.test_partitioned import Counts

from tests.support import running_services as services

LEADS = 90
SETTINGS = settings(max_examples=4, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@SETTINGS
@given(ops=operations, days=instants, batch=batch_sizes, seed=st.integers(0, 2**32))
def test_any_interleaving_of_partitions_equals_rebuild_and_replay(postgres_url: str, ops: list, days: list[int],
                                                                  batch: int, seed: int) -> None:
    with services.temporary_database(postgres_url) as url:
        run_partitioned_example(database_from_url(url), ops, days, batch, seed)


@SETTINGS
@given(ops=operations, days=instants, batch=st.integers(1, 8), seed=st.integers(0, 2**32))
def test_concurrent_workers_equal_rebuild_and_replay(postgres_url: str, ops: list, days: list[int], batch: int,
                                                     seed: int) -> None:
    with services.temporary_database(postgres_url) as url:
        run_partitioned_example(database_from_url(url), ops, days, batch, seed, concurrent=True)


def test_concurrent_workers_lose_no_update_of_a_row_they_share(postgres_url: str) -> None:
    """Three workers add every lead of their partition to one shared row, and each applies the campaign its
    partition brings: every lead is counted once, the campaign once (READ COMMITTED instead of SERIALIZABLE
    loses counts here)."""
    with services.temporary_database(postgres_url) as url:
        database = database_from_url(url)
        app = CrmApplication(database)
        campaign = app.plan_campaign(PlanCampaign("春季活动", "event", "1000"), at(0))
        for i in range(LEADS):
            app.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web", campaign_id=campaign), at(1 + i / 100))
        streams = partition_streams(sealed_log(app))
        PartitionedProjector(ReadModelStore(database), [Counts()]).store.close()  # tables made once

        retries = apply_concurrently(database, streams, random.Random(7), 2, lambda: [Counts()])

        store = ReadModelStore(database)
        assert dict(store.query("SELECT kind, n FROM test_counts")) == {"Campaign.Planned": 1, "Lead.Captured": LEADS}
        assert retries > 0  # they did meet on the row
        store.close()
        app.close()
