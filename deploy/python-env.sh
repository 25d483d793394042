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
export PATH="$repo/.venv/bin:$PATH"
