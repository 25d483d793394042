"""Fixtures for the integration tests: a real PostgreSQL and a real Kafka.

Where the services come from is decided in services.py: CRM_TEST_POSTGRES_URL /
CRM_TEST_KAFKA_BOOTSTRAP if set, else throw-away Docker containers (testcontainers) when a Docker
engine answers, else the project's own deploy/postgres.sh and deploy/kafka.sh. If none works the
tests fail with the reasons; they never skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pytest

from domain.partitions import PARTITIONS
from services.application import CrmApplication
from services.settings import database_from_url
from tests.conftest import at

from tests.support import running_services as services

INTEGRATION_DIR = Path(__file__).resolve().parent
MARKER = "integration: needs the real PostgreSQL and/or Kafka started by deploy/"


RESTARTS_MARKER = ("restarts_services: stops and starts PostgreSQL or Kafka through deploy/ (services.run_deploy): "
                   "deploy/run-tests.sh runs these on a private pair of services, beside the other integration tests")


BESIDE_MARKER = ("beside: an integration test deploy/run-tests.sh runs in its second process (unit, docs, e2e and "
                 "restarts_services), on the private pair of services, so that the two processes end together")
# The two heaviest integration modules that restart nothing (≈ 90 and 95 s of a loaded 1,000 s run).
BESIDE = frozenset({"test_benchmarks_smoke.py", "test_crash_safety.py"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    config.addinivalue_line("markers", RESTARTS_MARKER)
    config.addinivalue_line("markers", BESIDE_MARKER)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration is marked `integration` (select with -m integration); those of a
    module that calls `run_deploy(` also `restarts_services` — read from the source, so that a new outage
    test cannot forget it and take the services away from the tests running beside it."""
    restarting: dict[Path, bool] = {}
    for item in items:
        path = Path(item.path).resolve()
        if INTEGRATION_DIR in path.parents:
            item.add_marker(pytest.mark.integration)
            if restarting.setdefault(path, "run_deploy(" in path.read_text(encoding="utf-8")):
                item.add_marker(pytest.mark.restarts_services)
            if path.name in BESIDE:
                item.add_marker(pytest.mark.beside)


def _provide(server: Callable[[], AbstractContextManager[str]]) -> Iterator[str]:
    """Yield what `server` provides; turn "no way to get it" into a clear test failure."""
    with ExitStack() as stack:
        problem = None
        try:
            value = stack.enter_context(server())
        except services.ServiceUnavailable as error:
            problem = str(error)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        yield value


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The application role's URL of a PostgreSQL server (postgresql://crm:crm@127.0.0.1:55432/crm) whose owner
    role may create databases (services.owner_url)."""
    yield from _provide(services.postgres_server)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka broker (127.0.0.1:59092)."""
    yield from _provide(services.kafka_server)


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """The application role's URL of a fresh, uniquely named database whose owner role has set up the event
    log (`crm db migrate`) and nothing else, dropped (WITH FORCE) after the test."""
    with services.temporary_database(postgres_url) as url:
        yield url


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[str]:
    """Name of a fresh topic with one partition per home partition (64, as the relay needs), deleted after the
    test."""
    with services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS) as topic:
        yield topic


@pytest.fixture
def crm_pg(pg_database: str) -> Iterator[CrmApplication]:
    """The application on a fresh PostgreSQL database, with the default pipelines defined."""
    application = CrmApplication(database_from_url(pg_database))
    application.ensure_default_pipelines(at(-30, "setup"))
    yield application
    application.close()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local Spark session (`local[2]`, loopback only, no UI, 512 MB, quiet logs: services/bulk/spark_session.py),
    started once per test session (≈ 5–6 s of JVM CPU)."""
    from services.bulk.spark_session import spark_session  # here: only the tests that use Spark import pyspark

    session = spark_session("local[2]", "crm-tests")
    yield session
    session.stop()
