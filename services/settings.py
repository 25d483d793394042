"""Where the event log lives, chosen by one setting: CRM_DATABASE_URL.

- unset → the embedded default, an SQLite file `crm.sqlite3` in the working directory;
- `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` → that SQLite file;
- `memory://` → in memory, for tests and experiments;
- `postgresql://user:password@host:port/dbname` → PostgreSQL, as the APPLICATION role.

On PostgreSQL the application never creates or changes the log (eventsourcing's CREATE_TABLE=false): an owner
role does, with `crm db migrate` and CRM_DATABASE_OWNER_URL (services/storage/log_migration.py), so that the role the
application runs as cannot alter, empty or unprotect it. SQLite has no roles: there the application creates its
log and triggers itself, and the file's permissions are the boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

DEFAULT_SQLITE_PATH = "crm.sqlite3"
OWNER_URL_VARIABLE = "CRM_DATABASE_OWNER_URL"


class SettingsError(ValueError):
    """CRM_DATABASE_URL cannot be understood."""


@dataclass(frozen=True)
class Database:
    """A parsed database URL, and the eventsourcing environment that selects it."""

    url: str
    kind: str  # "sqlite", "postgresql" or "memory"
    env: dict[str, str]

    @property
    def sqlite_path(self) -> str | None:
        return self.env.get("SQLITE_DBNAME") if self.kind == "sqlite" else None

    @property
    def role(self) -> str | None:
        """The PostgreSQL role this URL logs in as (None elsewhere)."""
        return self.env.get("POSTGRES_USER") if self.kind == "postgresql" else None


def database_from_url(url: str | None) -> Database:
    if not url:
        return Database(f"sqlite:///{DEFAULT_SQLITE_PATH}", "sqlite", _sqlite_env(DEFAULT_SQLITE_PATH))
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return Database(url, "memory", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        if not path:
            raise SettingsError(f"SQLite URL {url!r} names no file; use sqlite:///crm.sqlite3")
        return Database(url, "sqlite", _sqlite_env(path))
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not (parts.hostname and dbname and parts.username):
            raise SettingsError(f"PostgreSQL URL must be postgresql://user:password@host:port/dbname, got {url!r}")
        return Database(
            url,
            "postgresql",
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": "services.storage.postgres_recorder:OneRoundTripRecorder",
                "POSTGRES_DBNAME": dbname,
                "POSTGRES_HOST": parts.hostname,
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_CONNECT_TIMEOUT": "2",  # also how long a save waits for a pooled connection
                "POSTGRES_POOL_SIZE": "5",
                "POSTGRES_MAX_OVERFLOW": "10",
                "CREATE_TABLE": "false",  # the log's DDL is the owner's: `crm db migrate`
            },
        )
    raise SettingsError(f"unsupported CRM_DATABASE_URL scheme {parts.scheme!r}; use sqlite:, postgresql: or memory:")


def _sqlite_env(path: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path, "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": "services.storage.event_recorder:ReceiptSQLiteRecorder"}


def database_from_environment() -> Database:
    return database_from_url(os.environ.get("CRM_DATABASE_URL"))


def owner_database_from_environment() -> Database:
    """The owner role's URL of the same database (CRM_DATABASE_OWNER_URL), for `crm db migrate` only."""
    url = os.environ.get(OWNER_URL_VARIABLE, "").strip()
    if not url:
        raise SettingsError(f"set {OWNER_URL_VARIABLE} to the URL of the role that owns the event log "
                            "(deploy/postgres.sh owner-url prints it)")
    return database_from_url(url)


REPORTING_CURRENCY_VARIABLE = "CRM_REPORTING_CURRENCY"
TIME_ZONE_VARIABLE = "CRM_TIME_ZONE"


def time_zone_from_environment() -> ZoneInfo:
    """The business's time zone (CRM_TIME_ZONE, an IANA name such as Asia/Shanghai; default UTC): the zone
    whose calendar every period-based answer uses (`domain.periods`).

    A setting, not an event, like the reporting currency: it chooses how to cut history into periods and
    changes none of it; read models that store per-day keys record the zone they were built with."""
    from domain.periods import UTC, zone_named

    name = os.environ.get(TIME_ZONE_VARIABLE, "").strip()
    try:
        return zone_named(name) if name else UTC
    except ValueError as error:
        raise SettingsError(f"{TIME_ZONE_VARIABLE}: {error}") from None


def reporting_currency_from_environment() -> str:
    """The currency reports convert into (CRM_REPORTING_CURRENCY, default CNY).

    A setting, not an event: it chooses how to *show* history, and changes none of it (every rate event
    names the currency it is quoted in, and read models keep amounts per currency, converting only when
    asked), so changing it needs no rebuild and no rewrite of the log."""
    from domain import money
    from domain.exchange_rates import DEFAULT_REPORTING_CURRENCY

    code = os.environ.get(REPORTING_CURRENCY_VARIABLE, "").strip() or DEFAULT_REPORTING_CURRENCY
    try:
        return money.currency(code)
    except ValueError as error:
        raise SettingsError(f"{REPORTING_CURRENCY_VARIABLE}: {error}") from None
