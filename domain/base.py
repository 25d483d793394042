"""What every CRM aggregate and event shares: business time, actor and correlation id."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from uuid import uuid4

from eventsourcing.domain import Aggregate

from domain.errors import DomainError


# Business time — when things happened, and dates like a deal's expected close — lies within 1900–2999
# (UTC): wide enough for any history or plan, and a mistyped year (0226, 20226) is refused, not stored.
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(3000, 1, 1, tzinfo=timezone.utc)
BUSINESS_YEARS = "between 1900-01-01 and 2999-12-31 (UTC)"


def require_business_date(value: date, what: str) -> date:
    """Return `value`, a calendar date within business time's range, or raise saying why not."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise DomainError(f"{what} must be a date like 2026-06-30, not {type(value).__name__}")
    if not EARLIEST.date() <= value < LATEST.date():
        raise DomainError(f"{what} must be {BUSINESS_YEARS} (got {value.isoformat()})")
    return value


def require_business_time(occurred_at: datetime) -> datetime:
    """Return `occurred_at`, an instant with a time zone within business time's range, or raise saying why not
    (every event's `Meta` and `crm import`'s checks ask this)."""
    if not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        raise DomainError("occurred_at must be a datetime with a time zone (e.g. 2026-03-01T09:00:00+00:00)")
    if not EARLIEST <= occurred_at < LATEST:
        raise DomainError(f"occurred_at must be {BUSINESS_YEARS} (got {occurred_at.isoformat()})")
    return occurred_at


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Meta:
    """Who did something, when it happened in business time, and which request it belongs to.

    `occurred_at` is business time: imports of history keep their original instant, and every
    as-of query uses it. The event's own `timestamp` is when it was recorded in the log.
    """

    occurred_at: datetime = field(default_factory=utc_now)
    actor: str = "system"
    correlation_id: str = field(default_factory=lambda: uuid4().hex)
    clocked: bool = False  # occurred_at is the server's clock when the request came, not an instant given

    @classmethod
    def now(cls, actor: str, correlation_id: str | None = None) -> Meta:
        """Business time from the clock. A request stamped before another that saved first to the same
        aggregate is recorded at that event's instant, rather than refused for running backwards."""
        return cls(actor=actor, correlation_id=correlation_id or uuid4().hex, clocked=True)

    def __post_init__(self) -> None:
        require_business_time(self.occurred_at)
        object.__setattr__(self, "actor", require_text(self.actor, "actor"))

    def fields(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.astimezone(timezone.utc),
            "actor": self.actor,
            "correlation_id": self.correlation_id,
        }


class CrmAggregate(Aggregate):
    """Base of all CRM aggregates: events carry Meta, and business time never runs backwards."""

    class Event(Aggregate.Event):
        occurred_at: datetime
        actor: str
        correlation_id: str

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            aggregate.last_occurred_at = self.occurred_at
            return aggregate

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _open(cls, event_class: type, meta: Meta, **fields: Any) -> Any:
        refuse_nul(fields)
        return cls._create(event_class, **meta.fields(), **fields)

    def _record(self, event_class: type, meta: Meta, **fields: Any) -> None:
        """Check business time is not before this aggregate's last event, then trigger the event."""
        stamped = meta.fields()
        if meta.occurred_at < self.last_occurred_at:
            if not meta.clocked:
                require_in_order(self.last_occurred_at, meta.occurred_at, type(self).__name__)
            stamped["occurred_at"] = self.last_occurred_at
        refuse_nul(fields)
        self.trigger_event(event_class, **stamped, **fields)


def require_in_order(last: datetime, occurred_at: datetime, kind: str) -> None:
    """An aggregate's business time never runs backwards: its intervals can neither overlap nor be negative."""
    if occurred_at < last:
        raise DomainError(f"occurred_at {occurred_at.isoformat()} is before this {kind}'s "
                          f"last event at {last.isoformat()}")


def refuse_nul(fields: dict[str, Any]) -> None:
    """No text may hold a NUL character: it is no character anyone types, and databases refuse it."""
    for name, value in fields.items():
        if isinstance(value, str) and "\x00" in value:
            raise DomainError(f"{name} must not contain NUL characters")


def require_text(value: str, what: str) -> str:
    """Return `value` stripped, or raise if it is blank."""
    if not isinstance(value, str) or not value.strip():
        raise DomainError(f"{what} must not be empty")
    return value.strip()


# An e-mail address, or 7+ digits of a phone number: shared by every unsealed text that must not describe a
# person (dimensions here, a person's external id in domain.external_ids).
CONTACT_DETAILS = re.compile(r"@|[0-9][0-9 ()+-]{5,}[0-9]")


def require_dimension(value: str, what: str) -> str:
    """A segmentation dimension (region, industry): not sealed, so it may not hold contact details."""
    value = require_text(value, what)
    if CONTACT_DETAILS.search(value):
        raise DomainError(f"{what} must not hold an e-mail address or a phone number: it is not personal data "
                          "and is stored unsealed")
    return value


def require_choice(value: str, allowed: tuple[str, ...] | frozenset[str], what: str) -> str:
    if value not in allowed:
        raise DomainError(f"unknown {what} {value!r}; expected one of: {', '.join(sorted(allowed))}")
    return value
