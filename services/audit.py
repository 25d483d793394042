"""A deal's audit trail: who changed what, when (business and recorded time), from which stage to which, why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.deal import Deal
from services.application import CrmApplication


@dataclass(frozen=True)
class AuditEntry:
    version: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    event: str
    from_stage: str | None
    to_stage: str | None
    detail: str
    correlation_id: str


def deal_audit_trail(app: CrmApplication, deal_id: UUID) -> tuple[Deal, list[AuditEntry]]:
    """The deal as it is now, and every one of its events as an audit entry, oldest first."""
    deal = app.get(Deal, deal_id)
    return deal, [_entry(event) for event in app.history(deal_id)]


def _entry(event: Deal.Event) -> AuditEntry:
    from_stage, to_stage, detail = _describe(event)
    return AuditEntry(
        version=event.originator_version,
        occurred_at=event.occurred_at,
        recorded_at=event.timestamp,
        actor=event.actor,
        event=type(event).__name__,
        from_stage=from_stage,
        to_stage=to_stage,
        detail=detail,
        correlation_id=event.correlation_id,
    )


def _describe(event: Deal.Event) -> tuple[str | None, str | None, str]:
    if isinstance(event, Deal.Opened):
        return None, event.stage, f"{event.title}; {event.amount} {event.currency}; owner {event.owner}"
    if isinstance(event, Deal.StageChanged):
        return event.from_stage, event.to_stage, event.reason
    if isinstance(event, Deal.Won):
        return event.from_stage, "won", event.note
    if isinstance(event, Deal.Lost):
        return event.from_stage, "lost", f"{event.reason} (to {event.competitor})" if event.competitor else event.reason
    if isinstance(event, Deal.Reopened):
        return None, event.stage, event.reason
    if isinstance(event, Deal.AmountChanged):
        return None, None, f"amount {event.old_amount} → {event.new_amount}"
    if isinstance(event, Deal.OwnerChanged):
        return None, None, f"owner {event.old_owner} → {event.new_owner}"
    return None, None, ""
