"""What the in-order checks need of one line, as plain values, and how those values are encoded.

A `Facts` is made by `fields.field_facts` (in a worker process, with `--jobs`) and read by
`engine.HistoryRules` (in the importing process, in file order). Plain values, so a worker's answer pickles
and unpickles cheaply: the parent, which reads them all, is the import's serial part. Ids travel as their
128-bit integers and business times as µs since the epoch.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.exchange_rates import ExchangeRate
from domain.lead import Lead
from domain.pipeline import Pipeline, pipeline_id
from domain.reminder_rules import Reminder
from domain.segment_change_rules import SegmentChange
from domain.targets import OwnerTeam, Target
from domain.ticket import Ticket
from domain.vocabulary import ACQUISITION_CHANNEL, INDUSTRY, LOSS_REASON, REGION, TOUCH_CHANNEL, Vocabulary, vocabulary_id

# The values of a line the in-order half reads (besides occurred_at), by event class.
FACTS: dict[type, tuple[str, ...]] = {
    Customer.Registered: ("campaign_id",),
    Lead.Captured: ("campaign_id", "variant"),
    Lead.Assigned: ("owner",),
    Lead.Converted: ("customer_id", "deal_id"),
    Deal.Opened: ("pipeline", "stage", "customer_id", "lead_id", "campaign_id", "external_id"),
    Deal.StageChanged: ("from_stage", "to_stage"),
    Deal.Won: ("from_stage",),
    Deal.Lost: ("from_stage",),
    Deal.Reopened: ("stage",),
    Campaign.ResponseRecorded: ("customer_id", "lead_id"),
    Lead.RespondedToCampaign: ("campaign_id", "variant"),
    Customer.RespondedToCampaign: ("campaign_id", "variant"),
    Campaign.VariantsDefined: ("variants",),
    Campaign.ExposuresRecorded: ("variant",),
    Campaign.VariantStopped: ("variant",),
    Campaign.WinnerDeclared: ("variant",),
    Ticket.Opened: ("customer_id", "external_id"),
    Ticket.StatusChanged: ("from_status", "to_status"),
    Pipeline.Defined: ("key", "stages"),
    Pipeline.StageRenamed: ("stage",),
    Pipeline.StageInserted: ("stage", "position"),
    Pipeline.StageRemindersSet: ("pipeline", "stage"),
    Reminder.Emitted: ("item_id", "entry_version", "threshold", "customer_id"),
    SegmentChange.Recorded: ("customer_id", "changed_at", "old_tier", "new_tier", "sequence"),
    Pipeline.StageForecastSet: ("stage",),
    Target.Set: ("scope", "name", "period"),
    OwnerTeam.Assigned: ("owner",),
    Vocabulary.Defined: ("kind", "values", "open"),
    Vocabulary.Replaced: ("values", "open"),
    Vocabulary.ValueAdded: ("value",),
    Vocabulary.ValueRetired: ("value",),
    ExchangeRate.Quoted: ("currency", "quote", "valid_from"),
    ExchangeRate.Corrected: ("currency", "quote", "valid_from"),
}

# The values checked against the vocabulary in force at their line (the in-order half: a value added
# earlier in the file counts), by event class: (field, vocabulary kind, what a refusal calls it). They
# travel after the FACTS values.
TERMS: dict[type, tuple[tuple[str, str, str], ...]] = {
    Customer.Registered: (("region", REGION, "region"), ("industry", INDUSTRY, "industry"),
                          ("channel", ACQUISITION_CHANNEL, "acquisition channel")),
    Customer.TouchLogged: (("channel", TOUCH_CHANNEL, "touch channel"),),
    Lead.Captured: (("region", REGION, "region"), ("industry", INDUSTRY, "industry"),
                    ("channel", ACQUISITION_CHANNEL, "acquisition channel")),
    Lead.Contacted: (("channel", TOUCH_CHANNEL, "touch channel"),),
    Deal.Lost: (("reason", LOSS_REASON, "loss reason"),),
    Campaign.Planned: (("channel", ACQUISITION_CHANNEL, "campaign channel"),),
    Ticket.Opened: (("channel", TOUCH_CHANNEL, "channel"),),
}

# What the in-order half needs of one line: (event type, aggregate id as a 128-bit int, version, occurred_at in
# µs since the epoch, FACTS of its class in that order, ids as ints).
Facts = tuple[str, int, int, int, tuple[Any, ...]]
REFERENCES = frozenset({"customer_id", "lead_id", "campaign_id", "deal_id"})
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)  # built once: building it takes ≈ 1 µs, a third of a line's field checks


def micros(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


def instant_of(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def id_of(text: str | None) -> int | None:
    """An id as Facts carry it: its 128-bit integer (a third of the memory of a UUID as a dict key)."""
    return None if text is None else int(text.replace("-", ""), 16)


@functools.lru_cache(maxsize=1024)
def pipeline_key(key: str) -> int:
    """The id of pipeline `key` as Facts carry ids (pipelines' ids derive from their key)."""
    return pipeline_id(key).int


@functools.lru_cache(maxsize=16)
def vocabulary_key(kind: str) -> int:
    """The id of vocabulary `kind` as Facts carry ids (vocabularies' ids derive from their kind)."""
    return vocabulary_id(kind).int


def line_name(facts: Facts) -> str:
    """How messages name a line: its event type and aggregate."""
    return f"{facts[0]} of {UUID(int=facts[1])}"
