#!/usr/bin/env bash
# deploy/postgres.sh — a private PostgreSQL cluster for the CRM's tests and local runs.
#
#   deploy/postgres.sh install   install Debian's postgresql package if it is missing (root)
#   deploy/postgres.sh start     initdb on first use, start, wait until ready, ensure roles+db
#   deploy/postgres.sh stop      fast shutdown
#   deploy/postgres.sh status    exit 0 when running and accepting connections
#   deploy/postgres.sh url       print the APPLICATION role's URL (what CRM_DATABASE_URL should be)
#   deploy/postgres.sh owner-url print the OWNER role's URL (CRM_DATABASE_OWNER_URL, for `crm db migrate`)
#   deploy/postgres.sh migrate   create or update the event log in database crm and in the shards crm_shard1,
#                                crm_shard2, plus the partition → shard table in crm (`crm db migrate` as the
#                                owner; needs the Python package: source deploy/python-env.sh first)
#   deploy/postgres.sh shard-urls        print CRM_SHARD_URLS of the three shards (crm first: the default)
#   deploy/postgres.sh shard-owner-urls  print CRM_SHARD_OWNER_URLS, the same databases as the owner
#
# This is NOT Debian's system cluster: it is our own cluster in
#   ${CRM_STATE_DIR:-<repo>/.state}/postgres/{data,run,postgres.log}
# listening only on 127.0.0.1:${CRM_PG_PORT:-55432}, with database crm owned by role crm_owner and used by
# the application role crm (passwords = role names); deploy/postgres-roles.sql says who may do what.
# PostgreSQL refuses to run as root, so when run as root the server runs as the `postgres`
# OS user. If that user cannot reach the state dir (e.g. the repo lives under /root), or the
# socket path would be too long, the cluster lives in /var/tmp/crm-postgres-<port> instead.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PG_PORT="${CRM_PG_PORT:-55432}"
PG_HOST=127.0.0.1
PG_ROLE=crm  # the application role; these names are also written in postgres-roles.sql
PG_PASSWORD=crm
PG_OWNER_ROLE=crm_owner
PG_OWNER_PASSWORD=crm_owner
PG_DATABASE=crm
PG_SHARDS=("$PG_DATABASE" crm_shard1 crm_shard2)  # also written in postgres-roles.sql, which creates them
PG_OS_USER=postgres
PG_START_TIMEOUT="${CRM_PG_START_TIMEOUT:-60}"

# ---------------------------------------------------------------- binaries and users

# Newest /usr/lib/postgresql/<ver>/bin that has both initdb and pg_ctl (empty if none).
find_pg_bindir() {
    local dir found=""
    while IFS= read -r dir; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then found="$dir"; fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    printf '%s' "$found"
}

cmd_install() {
    if [[ -z "$(find_pg_bindir)" ]]; then
        apt_install postgresql
        [[ -n "$(find_pg_bindir)" ]] || die "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    fi
    if is_root && ! id "$PG_OS_USER" >/dev/null 2>&1; then
        die "OS user '$PG_OS_USER' does not exist (it comes with Debian's postgresql package)"
    fi
    PG_BIN="$(find_pg_bindir)"
    log "using PostgreSQL binaries in $PG_BIN"
}

require_binaries() {
    PG_BIN="$(find_pg_bindir)"
    [[ -n "$PG_BIN" ]] || die "PostgreSQL is not installed (run: $0 install)"
}

# as_pg CMD...: run CMD as the postgres OS user when we are root, else as ourselves.
# Runs from / so the server user never needs access to the caller's cwd.
as_pg() {
    if is_root; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# as_pg_detached CMD...: the same in a new session, so that a server started by CMD does not
# die with the caller's terminal or process group (Ctrl-C in pytest, a closed shell...).
as_pg_detached() {
    as_pg setsid -w "$@"
}

# ---------------------------------------------------------------- where the cluster lives

# The postgres OS user can traverse $1 and a socket under $2 fits in sun_path (107 bytes).
location_usable() {
    local state="$1" socket="$2/run/.s.PGSQL.$PG_PORT"
    ((${#socket} < 100)) || return 1
    if is_root; then
        (cd / && runuser -u "$PG_OS_USER" -- test -x "$state") 2>/dev/null || return 1
    fi
}

resolve_paths() {
    local state
    state="$(state_dir)"
    PG_ROOT="$state/postgres"
    if ! location_usable "$state" "$PG_ROOT"; then
        PG_ROOT="/var/tmp/crm-postgres-$PG_PORT"
    fi
    PGDATA_DIR="$PG_ROOT/data"
    PG_SOCKET_DIR="$PG_ROOT/run"
    PG_LOG="$PG_ROOT/postgres.log"
}

# ---------------------------------------------------------------- cluster lifecycle

server_pid() {
    local pidfile="$PGDATA_DIR/postmaster.pid"
    [[ -f "$pidfile" ]] && head -n 1 "$pidfile"
}

# Running = postmaster.pid names a live process whose cwd is our data dir
# (a recycled pid after a crash or reboot does not count).
is_running() {
    local pid
    pid="$(server_pid 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ && -d "/proc/$pid" ]] || return 1
    [[ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" == "$(readlink -f "$PGDATA_DIR")" ]]
}

is_ready() {
    "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

prepare_dirs() {
    mkdir -p "$PG_ROOT" "$PG_SOCKET_DIR"
    if is_root; then
        chown -R "$PG_OS_USER:" "$PG_ROOT"
    fi
    chmod 0700 "$PG_ROOT" "$PG_SOCKET_DIR"
}

init_cluster_if_needed() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
    local locale_args=(--no-locale)
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        locale_args=(--locale=C.UTF-8)
    fi
    log "initdb into $PGDATA_DIR"
    rm -rf "$PGDATA_DIR"
    as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 "${locale_args[@]}" \
        --auth-local=trust --auth-host=scram-sha-256 >>"$PG_ROOT/initdb.log" 2>&1 \
        || { show_log_tail "$PG_ROOT/initdb.log"; die "initdb failed"; }
    echo "include_if_exists = 'crm.conf'" >>"$PGDATA_DIR/postgresql.conf"
}

# Settings we own, rewritten on every start so that a changed port/path takes effect.
write_config() {
    cat >"$PGDATA_DIR/crm.conf" <<EOF
# Written by deploy/postgres.sh on every start; edit the script, not this file.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
password_encryption = scram-sha-256
fsync = on
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    if is_root; then chown "$PG_OS_USER:" "$PGDATA_DIR/crm.conf"; fi
    chmod 0600 "$PGDATA_DIR/crm.conf"
}

# After a crash the pid/lock files remain; postgres copes with most cases but not with a
# pid recycled by an unrelated process, so remove them whenever the server is not ours.
clear_stale_lock_files() {
    if [[ -f "$PGDATA_DIR/postmaster.pid" ]] && ! is_running; then
        log "removing stale postmaster.pid (server was not shut down cleanly)"
        rm -f "$PGDATA_DIR/postmaster.pid"
    fi
    rm -f "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT.lock"
}

wait_until_ready() {
    local deadline=$((SECONDS + PG_START_TIMEOUT))
    until is_ready; do
        if ((SECONDS >= deadline)); then
            show_log_tail "$PG_LOG"
            die "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within ${PG_START_TIMEOUT}s"
        fi
        is_running || { show_log_tail "$PG_LOG"; die "PostgreSQL exited during startup"; }
        sleep 0.5
    done
}

# Superuser SQL (from stdin) over the private Unix socket (trust auth, only the server user can reach it).
psql_admin() {
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres
}

# The owner and application roles and database crm, from postgres-roles.sql (idempotent: also brings a
# cluster made by an older, single-role version of this script to the two roles).
ensure_roles_and_database() {
    psql_admin >/dev/null 2>"$PG_ROOT/roles.log" <"$REPO_ROOT/deploy/postgres-roles.sql" \
        || { show_log_tail "$PG_ROOT/roles.log"; die "could not create the roles and database $PG_DATABASE"; }
}

cmd_start() {
    cmd_install
    resolve_paths
    if is_running; then
        wait_until_ready
        ensure_roles_and_database
        log "already running (pid $(server_pid)) on $PG_HOST:$PG_PORT, data in $PGDATA_DIR"
        return 0
    fi
    if port_open "$PG_PORT"; then
        die "port $PG_HOST:$PG_PORT is already in use by another process (set CRM_PG_PORT to use another)"
    fi
    if [[ "$PG_ROOT" == /var/tmp/* ]]; then
        log "state dir not usable by OS user $PG_OS_USER (permissions or socket path length): using $PG_ROOT"
    fi
    prepare_dirs
    init_cluster_if_needed
    write_config
    clear_stale_lock_files
    log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: $PG_LOG)"
    if ! as_pg_detached "$PG_BIN/pg_ctl" start -D "$PGDATA_DIR" -l "$PG_LOG" \
        -w -t "$PG_START_TIMEOUT" -s >/dev/null; then
        show_log_tail "$PG_LOG"
        die "pg_ctl start failed"
    fi
    wait_until_ready
    ensure_roles_and_database
    log "ready: $(cmd_url) (owner: $(cmd_owner_url)); \`$0 migrate\` creates the event logs in databases ${PG_SHARDS[*]}"
}

cmd_stop() {
    require_binaries
    resolve_paths
    if ! is_running; then
        log "not running"
        return 0
    fi
    log "stopping PostgreSQL (pid $(server_pid))"
    if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 -s; then
        log "fast shutdown timed out, using immediate shutdown"
        as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA_DIR" -m immediate -w -t 30 -s || die "could not stop PostgreSQL"
    fi
}

cmd_status() {
    if [[ -z "$(find_pg_bindir)" ]]; then
        echo "postgres: not installed"
        return 3
    fi
    require_binaries
    resolve_paths
    if is_running && is_ready; then
        echo "postgres: running (pid $(server_pid)) $(cmd_url) data=$PGDATA_DIR"
        return 0
    fi
    if is_running; then
        echo "postgres: started (pid $(server_pid)) but not accepting connections"
        return 1
    fi
    echo "postgres: stopped"
    return 3
}

cmd_url() {
    printf 'postgresql://%s:%s@%s:%s/%s\n' "$PG_ROLE" "$PG_PASSWORD" "$PG_HOST" "$PG_PORT" "$PG_DATABASE"
}

cmd_owner_url() {
    printf 'postgresql://%s:%s@%s:%s/%s\n' "$PG_OWNER_ROLE" "$PG_OWNER_PASSWORD" "$PG_HOST" "$PG_PORT" "$PG_DATABASE"
}

# The shards' URLs as ROLE PASSWORD, comma-separated, the default shard (crm) first.
shard_urls() {
    local name urls=()
    for name in "${PG_SHARDS[@]}"; do
        urls+=("postgresql://$1:$2@$PG_HOST:$PG_PORT/$name")
    done
    (IFS=,; printf '%s\n' "${urls[*]}")
}

cmd_shard_urls() { shard_urls "$PG_ROLE" "$PG_PASSWORD"; }
cmd_shard_owner_urls() { shard_urls "$PG_OWNER_ROLE" "$PG_OWNER_PASSWORD"; }

# `crm db migrate` for database crm and the two other shards: the owner creates each log and grants the
# application its share, then the partition → shard table in crm (idempotent, like the step for one database).
cmd_migrate() {
    local python="${PYTHON:-python3}"
    CRM_SHARD_URLS="$(cmd_shard_urls)" CRM_SHARD_OWNER_URLS="$(cmd_shard_owner_urls)" \
        PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" "$python" -m gateways.cli.main db migrate \
        || die "migration failed (is the package installed? source deploy/python-env.sh first)"
}

main() {
    case "${1:-}" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        url) cmd_url ;;
        owner-url) cmd_owner_url ;;
        migrate) cmd_migrate ;;
        shard-urls) cmd_shard_urls ;;
        shard-owner-urls) cmd_shard_owner_urls ;;
        *) usage_and_exit "{install|start|stop|status|url|owner-url|migrate|shard-urls|shard-owner-urls}" ;;
    esac
}

main "$@"
