"""The segment changes read model's tables: the tier last announced per customer (the process's state), and
every announcement (what downstream tools were told, and when), and whose marketing consent was withdrawn."""

from __future__ import annotations

from typing import NamedTuple

from projections.tables import Table


class AnnouncedRow(NamedTuple):
    """The last announcement for a customer: the tier downstream tools believe it is in ("" once it left all)."""

    customer_id: str
    tier: str
    changed_at: int
    change_id: str


class ChangeRow(NamedTuple):
    change_id: str
    customer_id: str
    old_tier: str
    new_tier: str
    changed_at: int  # business time of the change
    announced_at: int  # business time of the event (the process's clock when it recorded it)


class ConsentRow(NamedTuple):
    """A customer's marketing consent, once it was withdrawn: while withdrawn nothing is announced for them."""

    customer_id: str
    withdrawn_at: int  # business time of the last withdrawal
    granted_at: int | None  # business time it was granted again after it (None: still withdrawn)


ANNOUNCED = Table("segment_announced", (("customer_id", "TEXT"), ("tier", "TEXT"), ("changed_at", "BIGINT"),
                                        ("change_id", "TEXT")), ("customer_id",), row_type=AnnouncedRow)
CHANGES = Table("segment_changes", (
    ("change_id", "TEXT"), ("customer_id", "TEXT"), ("old_tier", "TEXT"), ("new_tier", "TEXT"),
    ("changed_at", "BIGINT"), ("announced_at", "BIGINT")), ("change_id",),
    indexes=(("announced_at",), ("customer_id", "announced_at")), row_type=ChangeRow)
CONSENT = Table("segment_consent", (("customer_id", "TEXT"), ("withdrawn_at", "BIGINT"), ("granted_at", "BIGINT")),
                ("customer_id",), row_type=ConsentRow)
TABLES = (ANNOUNCED, CHANGES, CONSENT)
