"""How `crm projections rebuild --jobs N` shares the read models out among worker processes."""

from services.projection_runtime.parallel_rebuild import shares
from services.projection_runtime.registry import READ_MODELS


def test_every_read_model_goes_to_exactly_one_worker() -> None:
    names = list(READ_MODELS)
    for jobs in range(1, len(names) + 2):
        split = shares(names, jobs)
        assert sorted(n for share in split for n in share) == sorted(names)
        assert len(split) == min(jobs, len(names)) and all(split)
