"""The rows of the variants read model, one named type per table, fields in the table's column order.

Every row is a fact with its business time (µs since the epoch), written by the handler of the record it is
about: a campaign's definitions, exposures and decisions; a respondent's responses naming a variant; a lead
captured from a variant, with the instants it was qualified and converted (each happens once to a lead);
deals opened from a lead, with their events. A report as of T reads the facts that had happened by T, so the
same rows answer every instant.
"""

from __future__ import annotations

from typing import NamedTuple

STOPPED, WINNER = "stopped", "winner"  # `DecisionRow.decision`
OPENED, AMOUNT, WON, LOST, REOPENED = "opened", "amount", "won", "lost", "reopened"  # `DealEventRow.step`


class DefinitionRow(NamedTuple):
    """A campaign's variants as defined by the event `seq` (`variants`: their JSON, control first)."""

    campaign_id: str
    seq: int
    occurred_at: int
    variants: str


class ExposureRow(NamedTuple):
    campaign_id: str
    seq: int
    occurred_at: int
    variant: str
    count: int


class DecisionRow(NamedTuple):
    """A variant stopped, or declared the winner: by whom, when and why."""

    campaign_id: str
    seq: int
    occurred_at: int
    decision: str
    variant: str
    reason: str
    actor: str


class ResponseRow(NamedTuple):
    """A response naming a variant, on its respondent's stream (a lead's or a customer's)."""

    stream_id: str
    seq: int
    occurred_at: int
    campaign_id: str
    variant: str


class LeadRow(NamedTuple):
    """A lead captured from a variant, and when it was qualified and converted (None: not yet)."""

    lead_id: str
    campaign_id: str
    variant: str
    captured_at: int
    qualified_at: int | None
    converted_at: int | None


class ConversionRow(NamedTuple):
    """A lead converted into a customer (any lead: a response on its stream and one on the customer's are one
    respondent from the conversion on)."""

    lead_id: str
    customer_id: str
    converted_at: int


class DealRow(NamedTuple):
    """A deal opened from a lead (whichever: the join to a variant's leads is the query's)."""

    deal_id: str
    lead_id: str
    currency: str


class DealEventRow(NamedTuple):
    """What changes a deal's standing: opened or amount changed (with the amount), won, lost, reopened."""

    deal_id: str
    seq: int
    occurred_at: int
    step: str
    amount_cents: int | None
