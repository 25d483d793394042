"""A process that dies by SIGKILL in the middle of a reference write: after the default shard saved it and
shard 1 got its copy, before shard 2 did.

`CRM_SHARD_URLS=… python -m tests.support.die_between_shards` — inserts stage "demo" into pipeline sales.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from domain.base import Meta
from services.commands import InsertStage
from services.sharding import reference
from services.sharding.router import ShardedApplication
from services.sharding.shard_settings import shards_from_environment

COPY = reference.copy_aggregates

if __name__ == "__main__":
    crm = ShardedApplication(shards_from_environment() or [])

    def copy_then_die(source: Any, target: Any, *args: Any, **kwargs: Any) -> int:
        if target is crm.apps[2]:
            os.kill(os.getpid(), signal.SIGKILL)
        return COPY(source, target, *args, **kwargs)

    reference.copy_aggregates = copy_then_die  # type: ignore[assignment]
    crm.handle(InsertStage("sales", "demo", "Demo", after="first_contact"), Meta(actor="dying"))
