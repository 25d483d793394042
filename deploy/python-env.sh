#!/usr/bin/env bash
# Create (once) the project's virtualenv in .venv and install the package into it.
# Usage: source deploy/python-env.sh [extras]   e.g. "test"
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
if [ ! -x "$repo/.venv/bin/python" ]; then
    python3 -m venv "$repo/.venv" || { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$repo/.venv"; }
fi
# The tests run Spark (pyspark, in the test extra) in a local JVM: Java 17 or later.
if [[ ",$extras," == *",test,"* ]] && ! command -v java >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
target="$repo"
[ -n "$extras" ] && target="$repo[$extras]"
"$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
# crm import's per-line work in compiled code (services/history/native: Rust, PyO3, built by maturin), when
# cargo is here (or in ~/.cargo/bin): a build error fails the install. Without cargo the Python path runs
# (services/history/native_encoder.py). A first build on a fresh machine fetches and compiles the crates:
# 2 min 15 s wall at load 12 on 2 cores, 41 s of CPU (measured 2026-11-30), seconds after.
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$PATH:$HOME/.cargo/bin"
if command -v cargo >/dev/null; then
    "$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check "$repo/services/history/native"
else
    echo "python-env: no cargo: crm import runs its Python path (services/history/native not built)" >&2
fi
export PATH="$repo/.venv/bin:$PATH"
