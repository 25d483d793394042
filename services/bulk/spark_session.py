"""A Spark session for the bulk path: local and small for tests and one machine, the cluster's when run by
spark-submit.

Local mode (`master="local[N]"`) runs offline on the loopback only (no UI, no lookup of the host's name), in a
small heap, with warnings and errors only (`spark_log4j2.properties`). Its JVM is tuned for a short life: C1
compiler only and the serial GC halve the JVM's CPU time — measured on the 2-core machine: start 5.4–6.4 s
of CPU instead of 11–12 s, the demo's funnel rebuild 18 s instead of 34–37 s (JIT compiler threads are most
of the difference). Under spark-submit `master` is None: the cluster's own settings (master, memory, logging,
JVM) apply, and only `SQL_SETTINGS` are added.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")
LOCAL_JVM = f"-Dlog4j.configurationFile=file:{LOG_CONFIG} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# A few hundred MB of the log fit in memory; shuffles of a small history need no 200 tasks (Spark's default):
# one per core keeps the demo's rebuild to seconds.
LOCAL_SETTINGS = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "512m",
    "spark.driver.extraJavaOptions": LOCAL_JVM,
    "spark.sql.shuffle.partitions": "2",
    # An archive's directories listed by the driver: Spark's default lists more than 32 in a job of its own
    # (≈ 3 s for the demo's 59 on a busy machine), which pays on a cluster's object store only.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
    # Plans print their nodes' first 25 fields and warn once truncated: the funnel's log step has 30 columns.
    "spark.sql.debug.maxToStringFields": "100",
}
# Both: times as UTC whatever the machine's zone (the log's `recorded_at` and the funnel's epoch seconds).
SQL_SETTINGS = {"spark.sql.session.timeZone": "UTC"}


def spark_session(master: str | None = "local[2]", app_name: str = "crm-bulk") -> SparkSession:
    """The session: a local one over `master` ("local[N]"), or (None) the one spark-submit configured."""
    from pyspark.sql import SparkSession  # here: importing pyspark costs ≈ 0.3 s that other commands need not pay

    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else Spark looks the host up and warns about it
        builder = builder.master(master)
        for key, value in LOCAL_SETTINGS.items():
            builder = builder.config(key, value)
    for key, value in SQL_SETTINGS.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
