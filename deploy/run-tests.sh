#!/usr/bin/env bash
# The whole test suite on a fresh machine: install the package, start PostgreSQL and Kafka on
# loopback, run unit and integration tests. Fails when a test fails or when no test ran.
#
# Two pytest processes run side by side (the machine has 2 cores; one process kept ≈ 1 busy): one takes
# the integration tests on the services started first; the other takes unit, docs and end-to-end tests,
# and the integration tests that stop and start services (marker `restarts_services`) on a second,
# private pair of services — their outages must not hit the first process's tests — plus two heavy
# integration modules (marker `beside`) so that both end at about the same time.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/deploy/python-env.sh" test
cd "$repo"
# The dashboard's end-to-end test drives Debian's Chromium (Playwright's own browser download is not
# used), with CJK fonts so that its screenshots show the Chinese labels.
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
# The second pair: next to the first one's ports (defaults 55432 / 59092 / 59093), its own state dir.
restarting=(CRM_STATE_DIR="${CRM_STATE_DIR:-$repo/.state}/restarts"
            CRM_PG_PORT=$(( ${CRM_PG_PORT:-55432} + 1 ))
            CRM_KAFKA_PORT=$(( ${CRM_KAFKA_PORT:-59092} + 10 ))
            CRM_KAFKA_CONTROLLER_PORT=$(( ${CRM_KAFKA_CONTROLLER_PORT:-59093} + 10 )))
bash deploy/services.sh start
env "${restarting[@]}" bash deploy/services.sh start
# The layer contract first (pyproject.toml [tool.importlinter]): an upward import fails the run.
lint-imports --no-cache

pytest_run() {  # pytest_run LOG MARKERS [ENV...]: one pytest process; its exit status (5: nothing collected)
    local log="$1" markers="$2"
    shift 2
    env "$@" python -m pytest tests --ignore=tests/benchmarks -p no:cacheprovider -m "$markers" \
        "${pytest_args[@]}" > "$log" 2>&1
}
pytest_args=("$@")
logs="$(mktemp -d)"
(eval "$(env "${restarting[@]}" bash deploy/services.sh env)"
 pytest_run "$logs/other.log" "not integration or restarts_services or beside" "${restarting[@]}") &
other=$!
(eval "$(bash deploy/services.sh env)"
 pytest_run "$logs/integration.log" "integration and not (restarts_services or beside)") &
integration=$!
status=0
wait "$integration" || status=$?
other_status=0
wait "$other" || other_status=$?
for part in integration other; do
    echo "================ $part tests ================"
    cat "$logs/$part.log"
done
if [ "$status" -eq 5 ] && [ "$other_status" -eq 5 ]; then
    echo "run-tests: pytest collected no tests — failing on purpose" >&2
    exit 1
fi
# One process with nothing to run (arguments such as `-k NAME` chose tests of the other only) is no failure.
[ "$status" -eq 5 ] && status=0
[ "$other_status" -eq 5 ] && other_status=0
[ "$status" -ne 0 ] && exit "$status"
exit "$other_status"
