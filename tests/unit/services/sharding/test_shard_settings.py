"""CRM_SHARD_URLS / CRM_SHARD_OWNER_URLS: unset means one database; bad lists are refused saying why."""

from __future__ import annotations

import pytest

from services.settings import SettingsError
from services.sharding.shard_settings import parse_shard_urls, shard_owners_from_environment, shards_from_environment

PG = "postgresql://crm:crm@127.0.0.1:55432/"
OWNER = "postgresql://crm_owner:crm_owner@127.0.0.1:55432/"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_or_blank_means_no_shards(value: str | None) -> None:
    assert parse_shard_urls(value) is None
    assert shards_from_environment({} if value is None else {"CRM_SHARD_URLS": value}) is None


def test_the_first_url_is_the_default_shard_and_order_is_kept() -> None:
    shards = parse_shard_urls(f"{PG}crm, {PG}crm_shard1,{PG}crm_shard2")
    assert shards is not None
    assert [s.env["POSTGRES_DBNAME"] for s in shards] == ["crm", "crm_shard1", "crm_shard2"]


@pytest.mark.parametrize(("value", "message"), [
    (f"{PG}crm,,{PG}b", "item 2 of 3 is empty"),
    (f"{PG}crm,", "item 2 of 2 is empty"),
    (f"{PG}crm,{PG}crm", "shards 1 and 2 are the same database"),
    (f"{PG}crm,{OWNER}crm", "shards 1 and 2 are the same database"),  # another role, same database
    (f"{PG}crm,sqlite:///b.db", "one kind"),
    (f"{PG}crm,mysql://x@h/db", "unsupported"),
])
def test_bad_lists_are_refused_with_a_message(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_shard_urls(value)


def test_owner_urls_must_name_the_same_databases_in_the_same_order() -> None:
    shards = parse_shard_urls(f"{PG}a,{PG}b")
    assert shards is not None
    owners = shard_owners_from_environment(shards, {"CRM_SHARD_OWNER_URLS": f"{OWNER}a,{OWNER}b"})
    assert [o.role for o in owners] == ["crm_owner", "crm_owner"]
    with pytest.raises(SettingsError, match="names 1 databases, CRM_SHARD_URLS 2"):
        shard_owners_from_environment(shards, {"CRM_SHARD_OWNER_URLS": f"{OWNER}a"})
    with pytest.raises(SettingsError, match="item 1 .* another database"):
        shard_owners_from_environment(shards, {"CRM_SHARD_OWNER_URLS": f"{OWNER}b,{OWNER}a"})
    with pytest.raises(SettingsError, match="set CRM_SHARD_OWNER_URLS"):
        shard_owners_from_environment(shards, {})
