"""Peak memory (RSS of the process doing it) of ingest and rebuild: a tenth of the history vs all of it."""

from __future__ import annotations

from typing import Any

from tests.benchmarks.harness import Bench, Metric, log, ratio, run_child
from tests.benchmarks.history import head_of

TARGET_GROWTH = 1.25  # all the history may need at most this many times the peak of a tenth of it


def _metric(name: str, full: dict[str, Any], small: dict[str, Any], fraction: float) -> Metric:
    growth = ratio(full["peak_rss_mb"], small["peak_rss_mb"])
    return Metric(
        name, round(full["peak_rss_mb"], 1), "MiB (peak RSS)",
        f"peak RSS at {fraction:.0%} of the history ({small['events']:,} events)", round(small["peak_rss_mb"], 1),
        growth, f"flat: ≤ {TARGET_GROWTH}× from {fraction:.0%} to 100% of the history",
        growth is not None and growth <= TARGET_GROWTH,
        {"events": full["events"], "rss_before_mb": round(full["start_rss_mb"], 1),
         "rss_before_mb_small": round(small["start_rss_mb"], 1),
         "how": "VmHWM of a child process that does only that operation"},
    )


def measure(bench: Bench) -> list[Metric]:
    fraction = bench.plan.memory_fraction
    head = bench.workdir / "head.jsonl"
    head_of(bench.history, fraction, head)
    url = bench.database()
    log(f"importing and rebuilding {fraction:.0%} of the history for the memory comparison")
    small_ingest = run_child("ingest", url, str(head), str(bench.plan.batch))
    small_rebuild = run_child("rebuild", url)
    head.unlink()
    return [_metric("peak_memory_ingest", bench.ingest, small_ingest, fraction),
            _metric("peak_memory_rebuild", bench.rebuild, small_rebuild, fraction)]
