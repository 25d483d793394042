# shellcheck shell=bash
# Helpers shared by deploy/*.sh. Sourced, never run.
#
# Environment knobs (all optional):
#   CRM_STATE_DIR   where the services keep data, logs and pid files (default <repo>/.state)
#   CRM_CACHE_DIR   where downloaded artefacts are cached               (default ~/.cache/crm)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME="$(basename "${BASH_SOURCE[1]:-$0}" .sh)"

log() { printf '[%s] %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Absolute state dir, created on first use.
state_dir() {
    local dir="${CRM_STATE_DIR:-$REPO_ROOT/.state}"
    mkdir -p "$dir" || die "cannot create state dir $dir"
    (cd "$dir" && pwd)
}

cache_dir() {
    local dir="${CRM_CACHE_DIR:-${HOME:-/root}/.cache/crm}"
    mkdir -p "$dir" || die "cannot create cache dir $dir"
    (cd "$dir" && pwd)
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# apt_install PKG...: Debian packages, non-interactively; root only.
apt_install() {
    is_root || die "need root to apt-get install $* (re-run with sudo, or install it yourself)"
    log "installing $* with apt-get (one-off)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# show_log_tail FILE [LINES]: print the end of a log to stderr (used on failures).
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -f "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf -- '----- end of %s -----\n' "$file" >&2
    fi
}

# pid_alive_with PID PATTERN: the process exists and its command line contains PATTERN.
pid_alive_with() {
    local pid="$1" pattern="$2"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

usage_and_exit() {
    printf 'usage: %s %s\n' "$0" "$1" >&2
    exit 2
}
