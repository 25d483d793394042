"""The read models fed by partitions (`crm projections consume`) in `crm projections status` and `resume`.

`status` shows, per partition, the offsets the read models applied there (lowest–highest over them), the
log positions those deliveries had (what a write's `X-Log-Position: partition:position` is compared with) and
any read model stopped there; `resume NAME --partition P [--skip]` lets a read model go on in one partition
(the consumers apply it from there: nothing is caught up here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text

from gateways.cli.common import console
from projections.read_model import ReadModel
from services.projection_runtime.partition_freshness import partition_states
from services.projection_runtime.partitioned import PartitionedProjector
from services.storage.read_model_store import ReadModelStore


def show_partitions(store: ReadModelStore, names: Sequence[str]) -> set[str]:
    """The per-partition table and a line per stop, if any read model was ever fed by partitions; the read
    models fed so (`status` shows them first: over shards, all of them)."""
    states = partition_states(store, names)
    if not states:
        return set()
    table = Table("Partition", "Offset", "Position", "Read models", "State",
                  title="Fed by `crm projections consume`, per partition", title_justify="left")
    for state in states:
        stopped = ", ".join(stop.failure.name for stop in state.stops)
        table.add_row(str(state.partition), _span(state.offsets.values()), _span(state.positions.values()),
                      f"{len(state.offsets)}/{len(names)}",
                      Text(f"stopped: {stopped}", "red") if stopped else "running")
    console.print(table)
    for state in states:
        for stop in state.stops:
            console.print(f"{stop.message()}: `crm projections resume {stop.failure.name} --partition "
                          f"{stop.partition}` retries it (after a fix), with `--skip` passes it by for good")
    return {name for state in states for name in (*state.offsets, *(stop.failure.name for stop in state.stops))}


def _span(values: Iterable[int]) -> str:
    found = sorted(values)
    if not found:
        return "–"
    return f"{found[0]:,}" if found[0] == found[-1] else f"{found[0]:,}–{found[-1]:,}"


def resume_partition(store: ReadModelStore, models: Sequence[ReadModel], partition: int, skip: bool) -> None:
    """Let each of `models` go on in `partition`, printing what was cleared."""
    projector = PartitionedProjector(store, models)
    for model in models:
        stopped = projector.resume(model.name, partition, skip)
        if stopped is None:
            console.print(f"{model.name} was not stopped in partition {partition}.")
        else:
            console.print(f"{model.name}: {'passed by' if skip else 'retrying'} {stopped.failure.event_type} of "
                          f"{stopped.failure.aggregate_id} at partition {partition} offset {stopped.failure.position:,}"
                          "; the consumers go on from there.")
