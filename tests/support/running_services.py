"""Where the integration tests get a real PostgreSQL and a real Kafka from.

Each service is looked for in this order, and the first that works wins:

1. an environment variable (``CRM_TEST_POSTGRES_URL`` / ``CRM_TEST_KAFKA_BOOTSTRAP``): use it as is;
2. a reachable Docker engine: a throw-away container through testcontainers, removed afterwards
   (set ``CRM_TEST_NO_DOCKER=1`` to skip this step);
3. ``deploy/postgres.sh`` / ``deploy/kafka.sh``: the project's own local services, started if needed
   and left running afterwards (they are idempotent and cheap to reuse; stop them with
   ``deploy/services.sh stop``).

If none works, :class:`ServiceUnavailable` is raised with what each step said: the tests never
skip silently for want of a service.

PostgreSQL has two roles, as deploy/postgres-roles.sql makes them: the URL above is the APPLICATION role's
(``crm``); each test database is created and migrated (``crm db migrate``'s code) by the OWNER role, whose URL is
``CRM_TEST_POSTGRES_OWNER_URL`` or, unset, the same server with deploy's owner credentials (crm_owner/crm_owner).
So every integration test runs the CRM as the role that cannot change the log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"

POSTGRES_URL_ENV = "CRM_TEST_POSTGRES_URL"
POSTGRES_OWNER_URL_ENV = "CRM_TEST_POSTGRES_OWNER_URL"
DEFAULT_OWNER = ("crm_owner", "crm_owner")  # role and password, as deploy/postgres-roles.sql creates them
KAFKA_BOOTSTRAP_ENV = "CRM_TEST_KAFKA_BOOTSTRAP"
NO_DOCKER_ENV = "CRM_TEST_NO_DOCKER"

POSTGRES_IMAGE = os.environ.get("CRM_TEST_POSTGRES_IMAGE", "postgres:16")
KAFKA_IMAGE = os.environ.get("CRM_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")

# A first start may install PostgreSQL with apt or fetch the Kafka jars with Maven.
DEPLOY_START_TIMEOUT_S = 900


class ServiceUnavailable(RuntimeError):
    """No way to get the service worked; the message says what each attempt reported."""


# ---------------------------------------------------------------- discovery steps


def docker_available() -> bool:
    """True when a Docker engine answers a ping (never raises)."""
    if os.environ.get(NO_DOCKER_ENV, "").strip() not in ("", "0"):
        return False
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no package, no socket, no permission, engine down...
        return False


def run_deploy(script: str, *args: str, timeout: float = 60) -> str:
    """Run ``deploy/<script> <args>`` and return its stdout; raise ServiceUnavailable on failure."""
    command = ["bash", str(DEPLOY_DIR / script), *args]
    # The scripts' readiness check uses kafka-python: make them use this interpreter.
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServiceUnavailable(f"`{' '.join(command)}` did not complete: {error}") from error
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-40:])
        raise ServiceUnavailable(f"`{' '.join(command)}` exited with {done.returncode}:\n{tail}")
    return done.stdout.strip()


def _unavailable(service: str, attempts: list[str]) -> ServiceUnavailable:
    lines = "\n".join(f"  - {attempt}" for attempt in attempts)
    return ServiceUnavailable(
        f"no {service} for the integration tests. Tried:\n{lines}\n"
        f"Fix one of them, e.g. run `bash deploy/services.sh start` and `eval \"$(bash deploy/services.sh env)\"`."
    )


def _postgres_container() -> tuple[object, Callable[[object], str]]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.10
        from testcontainers.postgres import PostgresContainer
    # A superuser, and deploy's roles made by the image's first start from the same SQL file as deploy's.
    container = PostgresContainer(POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres",
                                  driver=None)
    container.with_volume_mapping(str(DEPLOY_DIR / "postgres-roles.sql"), "/docker-entrypoint-initdb.d/crm.sql")
    return container, lambda started: _as_role(started.get_connection_url(),  # type: ignore[attr-defined]
                                               "crm", "crm", "crm")


def _kafka_container() -> tuple[object, Callable[[object], str]]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.10
        from testcontainers.kafka import KafkaContainer
    return KafkaContainer(KAFKA_IMAGE).with_kraft(), lambda started: started.get_bootstrap_server()  # type: ignore[attr-defined]


@contextmanager
def _server(service: str, env_var: str, image: str, container_for: Callable[[], tuple[object, Callable[[object], str]]],
            script: str, address_command: str) -> Iterator[str]:
    """The service's address: from `env_var`, else a Docker container, else `deploy/<script>`."""
    if address := os.environ.get(env_var, "").strip():
        yield address
        return
    attempts = [f"${env_var}: not set"]
    if docker_available():
        container = None
        try:
            container, address_of = container_for()
            container.start()  # type: ignore[attr-defined]
            address = address_of(container)
        except Exception as error:
            attempts.append(f"testcontainers {image}: {error!r}")
            _stop_quietly(container)
        else:
            try:
                yield address
            finally:
                _stop_quietly(container)
            return
    else:
        attempts.append("Docker: no engine reachable")
    try:
        run_deploy(script, "start", timeout=DEPLOY_START_TIMEOUT_S)
        address = run_deploy(script, address_command)
    except ServiceUnavailable as error:
        attempts.append(f"deploy/{script}: {error}")
        raise _unavailable(service, attempts) from None
    yield address


def postgres_server() -> AbstractContextManager[str]:
    """The application role's ``postgresql://user:password@host:port/db`` URL of a server where the owner role
    (see `owner_url`) may CREATE DATABASE."""
    return _server("PostgreSQL", POSTGRES_URL_ENV, POSTGRES_IMAGE, _postgres_container, "postgres.sh", "url")


def kafka_server() -> AbstractContextManager[str]:
    """The ``host:port`` bootstrap servers of a Kafka broker that auto-creates topics."""
    return _server("Kafka", KAFKA_BOOTSTRAP_ENV, KAFKA_IMAGE, _kafka_container, "kafka.sh", "bootstrap")


def _stop_quietly(container: object | None) -> None:
    if container is None:
        return
    try:
        container.stop()  # type: ignore[attr-defined]
    except Exception:
        pass


# ---------------------------------------------------------------- per-test resources


def unique_name(prefix: str) -> str:
    """``prefix_<12 hex>``: valid as a PostgreSQL identifier and a Kafka topic name."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def url_with_database(url: str, database: str) -> str:
    """The same server URL (credentials, host, port, query) pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _as_role(url: str, user: str, password: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path))


def owner_url(app_url: str) -> str:
    """The owner role's URL of the database `app_url` points at (see the module's docstring)."""
    database = urlsplit(app_url).path.lstrip("/")
    if configured := os.environ.get(POSTGRES_OWNER_URL_ENV, "").strip():
        return url_with_database(configured, database)
    return _as_role(app_url, *DEFAULT_OWNER)


@contextmanager
def temporary_database(server_url: str, prefix: str = "crm_test", migrated: bool = True) -> Iterator[str]:
    """CREATE a fresh database as the owner role, set up its event log there (`crm db migrate`) unless not
    `migrated`, yield the application role's URL of it, DROP it (even if still in use) afterwards."""
    import psycopg
    from psycopg import sql

    from services.storage.log_migration import migrate_event_log
    from services.settings import database_from_url

    name, owner = unique_name(prefix), owner_url(server_url)
    try:
        with psycopg.connect(owner, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    except psycopg.OperationalError as error:
        raise ServiceUnavailable(f"the owner role cannot create a test database ({error}): set "
                                 f"{POSTGRES_OWNER_URL_ENV}, or run `deploy/postgres.sh start` to create the "
                                 "roles") from None
    try:
        if migrated:
            migrate_event_log(database_from_url(url_with_database(owner, name)), urlsplit(server_url).username)
        yield url_with_database(server_url, name)
    finally:
        _drop_database(owner, name)


def _drop_database(server_url: str, name: str, attempts: int = 20) -> None:
    """DROP … WITH (FORCE) ends the sessions a test left behind (a killed process's), but refuses to end an
    autovacuum worker (that needs pg_signal_backend); a plain DROP ends those itself. Retry while either
    finds something it may not end."""
    import psycopg
    from psycopg import sql

    statements = [sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
                  sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))]
    for attempt in range(attempts):
        try:
            with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as admin:
                admin.execute(statements[attempt % 2])
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


@contextmanager
def temporary_topic(bootstrap: str, partitions: int = 3, prefix: str = "crm-test") -> Iterator[str]:
    """Create a fresh topic with `partitions` partitions, wait until it has leaders, delete it afterwards."""
    from kafka.admin import KafkaAdminClient, NewTopic

    name = unique_name(prefix)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-tests-admin", request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)], timeout_ms=30_000)
        _wait_for_leaders(admin, name, partitions, timeout_s=30)
        yield name
    finally:
        try:
            admin.delete_topics([name], timeout_ms=30_000)
        except Exception:
            pass  # best effort: a leftover uniquely-named topic harms no one
        admin.close()


def _wait_for_leaders(admin: object, topic: str, partitions: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics([topic])  # type: ignore[attr-defined]
        # kafka-python 2.x says topic/leader, 3.x name/leader_id.
        ready = [p for d in described if topic in (d.get("name"), d.get("topic")) and not d.get("error_code")
                 for p in d.get("partitions", []) if p.get("leader_id", p.get("leader", -1)) >= 0]
        if len(ready) == partitions:
            return
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"topic {topic} has no leader for all {partitions} partitions after {timeout_s}s")
        time.sleep(0.2)
