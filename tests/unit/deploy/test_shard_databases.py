"""The test cluster's three shard databases are the same everywhere: created by postgres-roles.sql (run by
deploy/postgres.sh on every start and by docker compose on the first), listed by `postgres.sh shard-urls`,
and in the exports the compose file documents."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def script_urls(command: str) -> list[str]:
    done = subprocess.run(["bash", str(DEPLOY / "postgres.sh"), command], capture_output=True, text=True,
                          check=True, env={"PATH": "/usr/bin:/bin", "CRM_PG_PORT": "55432"})
    return done.stdout.strip().split(",")


def test_the_roles_script_creates_every_shard_database_the_scripts_list() -> None:
    roles = (DEPLOY / "postgres-roles.sql").read_text()
    names = [url.rsplit("/", 1)[1] for url in script_urls("shard-urls")]
    assert names == ["crm", "crm_shard1", "crm_shard2"]
    for name in names[1:]:
        assert f"'{name}'" in roles and f"ALTER DATABASE {name} OWNER TO crm_owner;" in roles


def test_owner_urls_name_the_same_databases_in_the_same_order() -> None:
    apps, owners = script_urls("shard-urls"), script_urls("shard-owner-urls")
    assert [u.split("@")[1] for u in apps] == [u.split("@")[1] for u in owners]
    assert {u.split("@")[0] for u in owners} == {"postgresql://crm_owner:crm_owner"}


def test_docker_compose_is_valid_and_offers_the_same_shards() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    postgres = compose["services"]["postgres"]
    assert any(v.startswith("./postgres-roles.sql:/docker-entrypoint-initdb.d/") for v in postgres["volumes"])
    assert postgres["ports"] == ["127.0.0.1:55432:5432"]
    exported = dict(re.findall(r"export (CRM_TEST_SHARD_(?:OWNER_)?URLS)=(\S+)", text))
    assert exported == {"CRM_TEST_SHARD_URLS": ",".join(script_urls("shard-urls")),
                        "CRM_TEST_SHARD_OWNER_URLS": ",".join(script_urls("shard-owner-urls"))}
