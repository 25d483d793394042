"""The layer contract (pyproject.toml [tool.importlinter], run by deploy/run-tests.sh): kept by the code,
and broken by an upward import — so the CI step would catch one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "services", "gateways")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})


def _copy_of_the_code(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_code_keeps_the_layer_contract() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "upward"), [
    ("domain/deal.py", "import services.settings"),
    ("projections/funnel/handlers.py", "import gateways.http.error_responses"),
    ("services/projection_runtime/projector.py", "from gateways.kafka import relay"),
    ("projections/segments/handlers.py", "from services import settings"),
])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, upward: str) -> None:
    root = _copy_of_the_code(tmp_path)
    source = root / module
    source.write_text(source.read_text(encoding="utf-8") + f"\n{upward}  # deliberately upward\n", encoding="utf-8")

    result = _lint(root)

    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr


SLICE_ROLES = {"rows.py", "handlers.py", "queries.py", "set_based.py"}  # the roles of a read-model slice, by design
# (set_based.py: its fold as SQL for the bulk rebuild, issue 14; not every slice has one yet)


def test_no_two_modules_share_a_name_but_the_roles_of_read_model_slices() -> None:
    """A name says which module is meant — in a traceback, a search, an editor tab — without its folder."""
    seen: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name != "__init__.py":
                seen.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    shared = {name: paths for name, paths in seen.items() if len(paths) > 1 and name not in SLICE_ROLES}
    assert shared == {}
    assert all(path.startswith("projections/") for name in SLICE_ROLES for path in seen.get(name, []))
