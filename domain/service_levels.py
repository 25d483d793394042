"""Service-quality rules of after-sales tickets, defined once for every read model that counts them:
what answers a ticket, how long each priority may take, who is satisfied, who became loyal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from domain.ticket import OPEN, Ticket

SATISFIED_SCORE = 4
"""Ratings are 1–5; a rating of 4 or 5 counts as satisfied (CSAT's usual top-two-box), ends a ticket's
service funnel as won, and makes a customer a loyalty candidate."""

Instant = TypeVar("Instant", int, datetime)  # business time, as a datetime or as stored (µs)


@dataclass(frozen=True)
class SlaTarget:
    """A priority's service-level targets: hours from opening to the first response and to resolution."""

    response_hours: int
    resolution_hours: int

    def response_late(self, hours: float) -> bool:
        """Late once the response took, or has so far taken, longer than the target; exactly on it is in time."""
        return hours > self.response_hours

    def resolution_late(self, hours: float) -> bool:
        """Late once the resolution took, or has so far taken, longer than the target; exactly on it is in time."""
        return hours > self.resolution_hours


SLA_TARGETS: dict[str, SlaTarget] = {
    "urgent": SlaTarget(response_hours=1, resolution_hours=8),  # same working day
    "high": SlaTarget(response_hours=4, resolution_hours=24),
    "normal": SlaTarget(response_hours=8, resolution_hours=72),
    "low": SlaTarget(response_hours=24, resolution_hours=168),  # a week
}
"""Per priority (`domain.vocabulary.TICKET_PRIORITIES`, every one of them)."""


def responds(event: Ticket.Event) -> bool:
    """Whether `event` is an agent's answer to the ticket: moving it on from open, or resolving it.

    The first such event is the ticket's first response (assigning it is not an answer to the customer).
    """
    return isinstance(event, Ticket.Resolved) or (isinstance(event, Ticket.StatusChanged) and event.from_status == OPEN)


def is_satisfied(score: int) -> bool:
    return score >= SATISFIED_SCORE


def is_loyal(first_satisfied_at: Instant, won_at: Iterable[Instant]) -> bool:
    """A customer is loyal who won a deal strictly after their first satisfied rating."""
    return any(won > first_satisfied_at for won in won_at)
