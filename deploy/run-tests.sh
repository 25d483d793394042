#!/usr/bin/env bash
# The whole test suite on a fresh machine: install the package, start PostgreSQL and Kafka on
# loopback, run unit and integration tests. Fails when a test fails or when no test ran.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/deploy/python-env.sh" test
cd "$repo"
bash deploy/services.sh start
eval "$(bash deploy/services.sh env)"
status=0
python -m pytest tests --ignore=tests/benchmarks -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "run-tests: pytest collected no tests — failing on purpose" >&2
    exit 1
fi
exit "$status"
