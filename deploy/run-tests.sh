#!/usr/bin/env bash
# The whole test suite on a fresh machine: install the package, start PostgreSQL and Kafka on
# loopback, run unit and integration tests. Fails when a test fails or when no test ran.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/deploy/python-env.sh" test
cd "$repo"
# The dashboard's end-to-end test drives Debian's Chromium (Playwright's own browser download is not
# used), with CJK fonts so that its screenshots show the Chinese labels.
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
bash deploy/services.sh start
eval "$(bash deploy/services.sh env)"
# The layer contract first (pyproject.toml [tool.importlinter]): an upward import fails the run.
lint-imports --no-cache
status=0
python -m pytest tests --ignore=tests/benchmarks -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "run-tests: pytest collected no tests — failing on purpose" >&2
    exit 1
fi
exit "$status"
