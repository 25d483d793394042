"""The API's routers, one module per aggregate or read model; add a read model's router here."""

from gateways.http.routes import (
    campaigns,
    customers,
    deals,
    funnel,
    health,
    leads,
    personal_data,
    pipelines,
    reports,
    segments,
    tickets,
    timeline,
)

ROUTERS = tuple(module.router for module in (health, customers, leads, deals, campaigns, tickets, pipelines, funnel,
                                             segments, reports, timeline, personal_data))
