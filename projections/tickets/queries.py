"""The query side of the service-ticket read model: backlog, response and resolution times, SLA, CSAT
and the service funnel, as of any instant.

The plain report is summed from the pre-summed tables (`summed_report`: its cost does not grow with the
history); the grouped report and the property-filtered one are still derived from every row by the
reference (`ticket_facts_report`), which the summed one is held equal to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from projections.tickets.ticket_facts_report import (Backlog, BreachPage, Csat, Durations, FactsTicketQueries,
                                              FunnelStep, Satisfaction, ServiceFunnel, Sla, SlaBreach, TicketReport)
from projections.tickets.summed_report import summed_report

FIRST_BREACHES = BreachPage(0, 50)
"""The breaching tickets a report lists unless asked (as a page of the API): their number grows with the history."""

__all__ = ["FIRST_BREACHES", "Backlog", "BreachPage", "Csat", "Durations", "FunnelStep", "Satisfaction", "ServiceFunnel", "Sla",
           "SlaBreach", "TicketQueries", "TicketReport"]


class TicketQueries(FactsTicketQueries):
    """Answers service questions as of an instant from the tickets read model.

    A ticket's subject is kept sealed (it is about the customer) and opened here with the log's keys
    (`unseal_all`, e.g. the key store's `unseal_all_marks`): once forgotten it reads "(forgotten)".
    """

    def report(self, as_of: datetime, properties: Sequence[tuple[str, str]] = (),
               page: BreachPage = FIRST_BREACHES) -> TicketReport:
        """The report as of `as_of`, of the tickets whose customer then had every one of `properties` (those
        from every row: `ticket_facts_report`), listing the `page` of its breaching tickets."""
        if properties:
            return super().report(as_of, properties, page)
        return summed_report(self.store, self.unseal_all, as_of, page)
