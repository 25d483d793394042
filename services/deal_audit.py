"""A deal's audit trail: who changed what, when (business and recorded time), from which stage to which, why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.deal import Deal
from domain.pipeline import LOST, WON
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
    entries, closed_as = [], None
    for event in app.history(deal_id):
        entries.append(_entry(event, closed_as))
        closed_as = _terminal(event) or closed_as
    return deal, entries


def _terminal(event: Deal.Event) -> str | None:
    """The terminal stage a Won/Lost event closes the deal in (a Reopened event itself names only its new stage)."""
    return WON if isinstance(event, Deal.Won) else LOST if isinstance(event, Deal.Lost) else None


def _entry(event: Deal.Event, closed_as: str | None) -> AuditEntry:
    from_stage, to_stage, detail = _describe(event)
    if isinstance(event, Deal.Reopened):
        from_stage = closed_as  # a deal can only be reopened from the won/lost it was last closed in
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
        return event.from_stage, WON, event.note
    if isinstance(event, Deal.Lost):
        return event.from_stage, LOST, f"{event.reason} (to {event.competitor})" if event.competitor else event.reason
    if isinstance(event, Deal.Reopened):
        return None, event.stage, event.reason
    if isinstance(event, Deal.AmountChanged):
        return None, None, f"amount {event.old_amount} → {event.new_amount}"
    if isinstance(event, Deal.OwnerChanged):
        return None, None, f"owner {event.old_owner} → {event.new_owner}"
    return None, None, _forecast_change(event)


def _forecast_change(event: Deal.Event) -> str:
    """What a forecast event changed, and why ("default": back to the stage's default)."""
    if isinstance(event, Deal.ExpectedCloseChanged):
        old, new = (day.isoformat() if day else "none" for day in (event.old_close, event.new_close))
        what = f"expected close {old} → {new}"
    elif isinstance(event, Deal.ProbabilityChanged):
        old, new = (f"{p} %" if p is not None else "default" for p in (event.old_probability, event.new_probability))
        what = f"probability {old} → {new}"
    elif isinstance(event, Deal.ForecastCategoryChanged):
        what = f"forecast category {event.old_category or 'default'} → {event.new_category or 'default'}"
    else:
        return ""
    return f"{what}: {event.reason}" if event.reason else what
