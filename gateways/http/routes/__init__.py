"""The API's routers, one `*_routes` module per aggregate or read model; add a new module's router here."""

from gateways.http.routes import (
    attribution_routes,
    campaign_routes,
    customer_routes,
    deal_routes,
    forecast_outlook_routes,
    forecast_routes,
    funnel_routes,
    health_routes,
    inspection_routes,
    lead_routes,
    metrics_routes,
    personal_data_routes,
    pipeline_routes,
    rate_routes,
    reminder_routes,
    report_routes,
    segment_routes,
    ticket_routes,
    timeline_routes,
    variant_routes,
    vocabulary_routes,
)

ROUTERS = tuple(module.router for module in (
    health_routes, customer_routes, lead_routes, deal_routes, campaign_routes, ticket_routes, pipeline_routes,
    funnel_routes, segment_routes, report_routes, timeline_routes, personal_data_routes, vocabulary_routes,
    rate_routes, reminder_routes, forecast_routes, forecast_outlook_routes, inspection_routes, metrics_routes,
    variant_routes, attribution_routes))
