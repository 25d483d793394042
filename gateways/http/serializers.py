"""Aggregates as JSON-able dicts (the state a GET returns)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from domain.base import CrmAggregate
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import Pipeline
from domain.ticket import Ticket
from services.deal_audit import AuditEntry


def _common(aggregate: CrmAggregate) -> dict[str, Any]:
    return {"id": aggregate.id, "version": aggregate.version, "last_occurred_at": aggregate.last_occurred_at}


def _record(aggregate: CrmAggregate) -> dict[str, Any]:
    """A customer's, lead's, deal's, ticket's or campaign's common fields, with its external id ("" if none)."""
    return {**_common(aggregate), "external_id": aggregate.external_id}


def customer_view(c: Customer) -> dict[str, Any]:
    return {**_record(c), "name": c.name, "company": c.company, "region": c.region, "industry": c.industry,
            "channel": c.channel, "email": c.email, "phone": c.phone, "campaign_id": c.campaign_id,
            "tags": sorted(c.tags), "marketing_consent": c.marketing_consent, "forgotten": c.forgotten,
            "properties": c.properties}


def lead_view(lead: Lead) -> dict[str, Any]:
    return {**_record(lead), "name": lead.name, "company": lead.company, "region": lead.region,
            "industry": lead.industry, "channel": lead.channel, "contact": lead.contact_details,
            "campaign_id": lead.campaign_id, "owner": lead.owner, "status": lead.status, "contacted": lead.contacted,
            "properties": lead.properties}


def deal_view(d: Deal) -> dict[str, Any]:
    return {**_record(d), "customer_id": d.customer_id, "title": d.title, "pipeline": d.pipeline, "stage": d.stage,
            "status": d.status, "amount": d.amount, "currency": d.currency, "owner": d.owner,
            "expected_close": d.expected_close, "lead_id": d.lead_id, "campaign_id": d.campaign_id,
            "properties": d.properties, "probability": d.own_probability, "forecast_category": d.own_category}


def campaign_view(c: Campaign) -> dict[str, Any]:
    return {**_record(c), "name": c.name, "channel": c.channel, "budget": c.budget, "currency": c.currency,
            "cost": c.cost, "status": c.status}


def ticket_view(t: Ticket) -> dict[str, Any]:
    return {**_record(t), "customer_id": t.customer_id, "subject": t.subject, "priority": t.priority,
            "channel": t.channel, "status": t.status, "assignee": t.assignee, "rated": t.rated}


def pipeline_view(p: Pipeline) -> dict[str, Any]:
    return {**_common(p), "key": p.key, "name": p.name, "stages": [dict(s) for s in p.stages],
            "stage_forecasts": {key: p.stage_forecast(key).to_dict() for key in p.stage_keys}}


def audit_entry_view(entry: AuditEntry) -> dict[str, Any]:
    return asdict(entry)
