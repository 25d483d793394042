"""The funnel read model's write side: events become stage intervals and owner/amount versions of pipeline
items, in business time, and the pre-summed tallies of their funnels.

Items are deals (sales or any pipeline), leads (marketing) and tickets (service); see `steps`.
An item's life becomes stage intervals `[entered_at, left_at)` (won and lost are terminal stages) and
versions of its owner and amount `[valid_from, valid_to)`; the named properties of deals, leads and customers
have versions too (`funnel_properties`). "The funnel as of T" is then a set of
indexed range queries (`entered_at <= T < left_at`, see `queries`) rather than a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import Any, cast
from uuid import UUID

from domain.periods import UTC, is_utc
from domain.pipeline import Pipeline
from projections.read_model import ReadModel, Rows
from projections.funnel.rows import (CURRENT_PROPERTIES, CUSTOMERS, INTERVALS, ITEMS, PROPERTIES, TABLES, VERSIONS,
                                     Change, CurrentPropertyRow, CustomerRow, IntervalRow, ItemRow, PropertyRow,
                                     VersionRow, length_band)
from projections.funnel.steps import (FUNNEL_EVENTS, NO_ATTRIBUTES, Describe, Enter, ItemAttributes, Move, Profile,
                                      Revise, funnel_steps)
from projections.funnel.tally import arrived, define, insert_stage, left, levels_of, record, refresh_sums, revalued
from projections.tables import micros


class FunnelReadModel(ReadModel):
    """Stage intervals of every pipeline item (deals, leads for marketing, tickets for service) and
    the pre-summed tallies of their funnels."""

    name = "funnel"
    tables = TABLES
    revision = 1  # 1: tallies count lost items per furthest stage (`l|stage`, issue 12's honest conversion)
    settings = ("zone",)

    def __init__(self, zone: tzinfo = UTC) -> None:
        self.zone = zone  # the tallies' days and months are this zone's (the installation's: CRM_TIME_ZONE)

    def built_with(self) -> str:
        """The tallies' zone, but for UTC: its fingerprint stays the one read models built before zones had."""
        return "" if is_utc(self.zone) else f"time zone {self.zone}"

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {**{event_class: self._handle for event_class in FUNNEL_EVENTS},
                Pipeline.Defined: _defined, Pipeline.StageInserted: _stage_inserted}

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        steps = [step for event in events for step in funnel_steps(event)]
        rows.prefetch(ITEMS, [(str(s.item_id),) for s in steps if isinstance(s, (Enter, Move, Revise))])
        rows.prefetch(CURRENT_PROPERTIES, [(str(s.subject_id), name) for s in steps if isinstance(s, Describe)
                                           for name in s.changes])
        rows.prefetch(CUSTOMERS, [(str(s.customer_id),) for s in steps if isinstance(s, Enter) and s.customer_id])

    def finish(self, rows: Rows) -> None:
        refresh_sums(rows)  # the batch's closed days and months summed over the partitions

    def _handle(self, event: Any, rows: Rows) -> None:
        at, seq = micros(event.occurred_at), event.originator_version
        change: Change = {}
        item: ItemRow | None = None
        for step in funnel_steps(event):
            if isinstance(step, Profile):
                rows.put(CUSTOMERS, _customer(step))
            elif isinstance(step, Describe):
                _describe(step, at, seq, rows)
            elif isinstance(step, Enter):
                item = _enter(step, at, seq, rows, change)
            elif isinstance(step, Move):
                item = _move(step, at, seq, rows, change)
            else:
                item = _revise(step, at, seq, rows, change)
        if item is not None:
            record(change, item, seq, at, rows, self.zone)


def _defined(event: Pipeline.Defined, rows: Rows) -> None:
    define(event.originator_id, event.key, [stage["key"] for stage in event.stages], rows)


def _stage_inserted(event: Pipeline.StageInserted, rows: Rows) -> None:
    insert_stage(event.originator_id, event.stage, event.position, rows)


def _enter(step: Enter, at: int, seq: int, rows: Rows, change: Change) -> ItemRow:
    region, industry, channel = step.profile or _customer_attributes(step, rows)
    item: ItemRow = {
        "item_id": str(step.item_id), "pipeline": step.pipeline,
        "customer_id": str(step.customer_id) if step.customer_id else None,
        "campaign_id": str(step.campaign_id) if step.campaign_id else None,
        "region": region, "industry": industry, "channel": channel, "opened_at": at,
        "stage": step.stage, "prev_stage": None, "stage_seq": seq, "stage_entered_at": at,
        "owner": step.owner, "amount_cents": step.amount_cents, "version_seq": seq, "version_from": at,
        "furthest": None, "currency": step.currency,
    }
    arrived(change, item, levels_of(step.pipeline, rows))
    rows.put(ITEMS, item)
    rows.put(INTERVALS, _interval(item, left_at=None))
    rows.put(VERSIONS, _version(item, valid_to=None))
    return item


def _customer_attributes(step: Enter, rows: Rows) -> ItemAttributes:
    """Region, industry and channel of the item's customer (none if the log has not registered it)."""
    customer = rows.get(CUSTOMERS, str(step.customer_id)) if step.customer_id else None
    return ItemAttributes(customer["region"], customer["industry"], customer["channel"]) if customer else NO_ATTRIBUTES


def _move(step: Move, at: int, seq: int, rows: Rows, change: Change) -> ItemRow:
    item = _item(step.item_id, rows)
    if item["stage"] == step.stage or (step.only_from and item["stage"] not in step.only_from):
        return item
    left(change, item, at)
    rows.put(INTERVALS, _interval(item, left_at=at))
    item.update(prev_stage=item["stage"], stage=step.stage, stage_seq=seq, stage_entered_at=at)
    arrived(change, item, levels_of(item["pipeline"], rows))
    rows.put(ITEMS, item)
    rows.put(INTERVALS, _interval(item, left_at=None))
    return item


def _revise(step: Revise, at: int, seq: int, rows: Rows, change: Change) -> ItemRow:
    item = _item(step.item_id, rows)
    changes = {k: v for k, v in (("owner", step.owner), ("amount_cents", step.amount_cents)) if v is not None}
    if all(item[k] == v for k, v in changes.items()):
        return item
    if step.amount_cents is not None:
        revalued(change, item, step.amount_cents)
    rows.put(VERSIONS, _version(item, valid_to=at))
    item.update(changes, version_seq=seq, version_from=at)
    rows.put(ITEMS, item)
    rows.put(VERSIONS, _version(item, valid_to=None))
    return item


def _describe(step: Describe, at: int, seq: int, rows: Rows) -> None:
    """End each changed property's open version at `at` and open the new one (none for a removal)."""
    subject = str(step.subject_id)
    for name, value in step.changes.items():
        current = cast("CurrentPropertyRow | None", rows.get(CURRENT_PROPERTIES, subject, name))
        if (current["value"] if current is not None else "") == value:
            continue  # unchanged (an imported history may say so twice)
        if current is not None and current["value"]:
            rows.put(PROPERTIES, _property(current, valid_to=at))
        now: CurrentPropertyRow = {"subject_id": subject, "name": name, "seq": seq, "value": value, "valid_from": at}
        rows.put(CURRENT_PROPERTIES, now)
        if value:
            rows.put(PROPERTIES, _property(now, valid_to=None))


def _property(current: CurrentPropertyRow, valid_to: int | None) -> PropertyRow:
    return {"subject_id": current["subject_id"], "name": current["name"], "seq": current["seq"],
            "value": current["value"], "valid_from": current["valid_from"], "valid_to": valid_to}


def _item(item_id: UUID, rows: Rows) -> ItemRow:
    item = rows.get(ITEMS, str(item_id))
    assert item is not None, f"{item_id} changed before it entered its pipeline"
    return cast(ItemRow, item)


def _customer(step: Profile) -> CustomerRow:
    return {"customer_id": str(step.customer_id), "region": step.region, "industry": step.industry,
            "channel": step.channel}


def _interval(item: ItemRow, left_at: int | None) -> IntervalRow:
    """The row of the item's stay in its current stage, ended at `left_at` or open (None)."""
    length = None if left_at is None else left_at - item["stage_entered_at"]
    return {"item_id": item["item_id"], "seq": item["stage_seq"], "pipeline": item["pipeline"],
            "stage": item["stage"], "prev_stage": item["prev_stage"], "entered_at": item["stage_entered_at"],
            "left_at": left_at, "length": length, "length_band": None if length is None else length_band(length)}


def _version(item: ItemRow, valid_to: int | None) -> VersionRow:
    """The row of the item's current owner and amount, ended at `valid_to` or current (None)."""
    return {"item_id": item["item_id"], "seq": item["version_seq"], "owner": item["owner"],
            "amount_cents": item["amount_cents"], "valid_from": item["version_from"], "valid_to": valid_to}
