#!/usr/bin/env bash
# deploy/services.sh — PostgreSQL and Kafka together (see postgres.sh and kafka.sh).
#
#   deploy/services.sh start    start both (idempotent), waiting until each is ready
#   deploy/services.sh stop     stop both
#   deploy/services.sh status   exit 0 only when both are running
#   deploy/services.sh env      print `export` lines for the integration tests (the application role's and
#                               the owner role's PostgreSQL URLs, the same for the three shard databases,
#                               the Kafka bootstrap servers):
#                                 eval "$(deploy/services.sh env)"
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

DEPLOY_DIR="$REPO_ROOT/deploy"

postgres() { bash "$DEPLOY_DIR/postgres.sh" "$@"; }
kafka() { bash "$DEPLOY_DIR/kafka.sh" "$@"; }

cmd_start() {
    local started=$SECONDS
    postgres start
    kafka start
    log "services ready in $((SECONDS - started))s"
}

# Stop both even if the first one fails; fail if either did.
cmd_stop() {
    local rc=0
    kafka stop || rc=1
    postgres stop || rc=1
    return "$rc"
}

cmd_status() {
    local rc=0
    postgres status || rc=1
    kafka status || rc=1
    return "$rc"
}

cmd_env() {
    local url bootstrap
    url="$(postgres url)"
    bootstrap="$(kafka bootstrap)"
    printf "export CRM_TEST_POSTGRES_URL='%s'\n" "$url"
    printf "export CRM_TEST_POSTGRES_OWNER_URL='%s'\n" "$(postgres owner-url)"
    printf "export CRM_TEST_SHARD_URLS='%s'\n" "$(postgres shard-urls)"
    printf "export CRM_TEST_SHARD_OWNER_URLS='%s'\n" "$(postgres shard-owner-urls)"
    printf "export CRM_TEST_KAFKA_BOOTSTRAP='%s'\n" "$bootstrap"
}

main() {
    case "${1:-}" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *) usage_and_exit "{start|stop|status|env}" ;;
    esac
}

main "$@"
