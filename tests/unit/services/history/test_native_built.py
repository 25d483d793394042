"""Where cargo is, the compiled import path must be built and importable (`deploy/python-env.sh` builds it
there): otherwise its equality tests (`test_native_encoder.py`, `test_native_import_postgres.py`) would skip,
and a machine whose extension failed to load would import by the Python path without anyone noticing (second
review, P2). Without cargo the Python path is the import's only path, and those tests skip, saying why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.history import native_encoder


def _cargo() -> bool:
    return shutil.which("cargo") is not None or (Path.home() / ".cargo" / "bin" / "cargo").exists()


@pytest.mark.skipif(not _cargo(), reason="no cargo here: crm import runs its Python path only")
def test_the_compiled_path_is_built_wherever_cargo_is() -> None:
    assert native_encoder.crm_native is not None, (
        "cargo is here but crm_native does not import: run deploy/python-env.sh (it builds services/history/native)")
