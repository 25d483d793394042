"""`crm import` that dies by SIGKILL right after shard N committed its part (for the resume test).

`CRM_SHARD_URLS=… python -m tests.support.die_importing_between_shards N FILE [crm import options]`.
"""

from __future__ import annotations

import os
import signal
import sys

from gateways.cli.main import app
from services.sharding import history_import

if __name__ == "__main__":
    last = int(sys.argv[1])

    def die_after(shard: int) -> None:
        if shard == last:
            os.kill(os.getpid(), signal.SIGKILL)

    history_import.after_shard_written = die_after
    app(["import", *sys.argv[2:]], prog_name="crm")
