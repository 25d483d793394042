"""The service-ticket read model: backlog, response and resolution times, SLA, CSAT and the service funnel.

`handlers` is its write side (tables, events → typed `rows`), `queries` its query side (the report as
of any instant); the rules are `domain.service_levels`. The public names are here, so callers import
`from projections.tickets import ...`.
"""

from __future__ import annotations

from projections.tickets.handlers import TicketsReadModel
from projections.tickets.queries import (
    BreachPage,
    Backlog,
    Csat,
    Durations,
    Satisfaction,
    ServiceFunnel,
    Sla,
    SlaBreach,
    TicketQueries,
    TicketReport,
)

__all__ = ["Backlog", "BreachPage", "Csat", "Durations", "Satisfaction", "ServiceFunnel", "Sla", "SlaBreach", "TicketQueries",
           "TicketReport", "TicketsReadModel"]
