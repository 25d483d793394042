#!/usr/bin/env bash
# deploy/kafka.sh — a single-node Apache Kafka broker (KRaft, broker+controller, no ZooKeeper).
#
#   deploy/kafka.sh install     fetch the broker jars from Maven Central into the cache (once)
#   deploy/kafka.sh start       format storage on first use, start in the background, wait until ready
#   deploy/kafka.sh stop        graceful shutdown (SIGTERM, SIGKILL after 60 s)
#   deploy/kafka.sh status      exit 0 when running and answering
#   deploy/kafka.sh bootstrap   print the bootstrap servers (127.0.0.1:<port>)
#
# Jars: deploy/kafka/pom.xml, copied by Maven into ${CRM_CACHE_DIR:-~/.cache/crm}/kafka-<version>/libs.
# State: ${CRM_STATE_DIR:-<repo>/.state}/kafka/{data,server.properties,kafka.log,kafka.pid}.
# Ports (127.0.0.1 only): broker ${CRM_KAFKA_PORT:-59092}, controller ${CRM_KAFKA_CONTROLLER_PORT:-59093}.
# Other knobs: CRM_KAFKA_HEAP_OPTS (default "-Xms128m -Xmx512m"), CRM_KAFKA_START_TIMEOUT (90),
# PYTHON (interpreter with kafka-python used for the readiness check, default python3).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${CRM_KAFKA_PORT:-59092}"
CONTROLLER_PORT="${CRM_KAFKA_CONTROLLER_PORT:-59093}"
KAFKA_HEAP_OPTS="${CRM_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_START_TIMEOUT="${CRM_KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT=60
PYTHON="${PYTHON:-python3}"
POM="$REPO_ROOT/deploy/kafka/pom.xml"
LOG4J_CONFIG="$REPO_ROOT/deploy/kafka/log4j2.properties"
MIN_JAVA=17

kafka_version() {
    local version
    version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n 1)"
    [[ -n "$version" ]] || die "no <kafka.version> in $POM"
    printf '%s' "$version"
}

resolve_paths() {
    KAFKA_VERSION="$(kafka_version)"
    KAFKA_HOME="$(cache_dir)/kafka-$KAFKA_VERSION"
    KAFKA_LIBS="$KAFKA_HOME/libs"
    KAFKA_STATE="$(state_dir)/kafka"
    KAFKA_DATA="$KAFKA_STATE/data"
    KAFKA_CONFIG="$KAFKA_STATE/server.properties"
    KAFKA_LOG="$KAFKA_STATE/kafka.log"
    KAFKA_PIDFILE="$KAFKA_STATE/kafka.pid"
}

# ---------------------------------------------------------------- install

java_major_version() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -n 1
}

ensure_java() {
    command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
    local major
    major="$(java_major_version)"
    [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the Java version from 'java -version'"
    ((major >= MIN_JAVA)) || die "Kafka $(kafka_version) needs Java $MIN_JAVA+, found Java $major"
}

ensure_maven() {
    command -v mvn >/dev/null 2>&1 || apt_install maven
}

# run_maven GOAL/ARGS...: quiet batch Maven on our pom; output (errors only) to stderr
# without the colour escape codes Maven 3.8 emits even in batch mode.
run_maven() {
    (cd "$(dirname "$POM")" && mvn -q -B -Dstyle.color=never -f "$POM" "$@" 2>&1) |
        sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2
}

pom_checksum() {
    sha256sum "$POM" | cut -d ' ' -f 1
}

libs_complete() {
    [[ -f "$KAFKA_LIBS/.complete" && "$(cat "$KAFKA_LIBS/.complete")" == "$(pom_checksum)" ]]
}

cmd_install() {
    resolve_paths
    ensure_java
    if libs_complete; then
        return 0
    fi
    ensure_maven
    log "fetching Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS (first time only)"
    local started=$SECONDS tmp
    mkdir -p "$KAFKA_HOME"
    tmp="$(mktemp -d "$KAFKA_HOME/libs.tmp.XXXXXX")"
    if ! run_maven dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"; then
        rm -rf "$tmp"
        die "Maven could not fetch the Kafka jars (is Maven Central reachable?)"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after Maven run"; }
    pom_checksum >"$tmp/.complete"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    log "fetched $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - started))s"
}

# ---------------------------------------------------------------- configuration

write_server_properties() {
    mkdir -p "$KAFKA_DATA"
    cat >"$KAFKA_CONFIG" <<EOF
# Written by deploy/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=104857600
EOF
}

# java_command MAIN-CLASS ARGS...: sets JAVA_COMMAND to the full java command line.
java_command() {
    # shellcheck disable=SC2206  # KAFKA_HEAP_OPTS is a list of JVM flags
    JAVA_COMMAND=(java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" -cp "$KAFKA_LIBS/*" "$@")
}

storage_tool() {
    java_command -Dcrm.kafka.loglevel=WARN kafka.tools.StorageTool "$@"
    "${JAVA_COMMAND[@]}"
}

format_storage_if_needed() {
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then return 0; fi
    local cluster_id
    if ! cluster_id="$(storage_tool random-uuid 2>"$KAFKA_STATE/format.log")"; then
        show_log_tail "$KAFKA_STATE/format.log"
        die "kafka.tools.StorageTool random-uuid failed"
    fi
    cluster_id="$(tail -n 1 <<<"$cluster_id")"
    log "formatting $KAFKA_DATA (cluster id $cluster_id)"
    storage_tool format --ignore-formatted -t "$cluster_id" -c "$KAFKA_CONFIG" >"$KAFKA_STATE/format.log" 2>&1 \
        || { show_log_tail "$KAFKA_STATE/format.log"; die "formatting the Kafka log dir failed"; }
}

# ---------------------------------------------------------------- process

broker_pid() {
    [[ -f "$KAFKA_PIDFILE" ]] && cat "$KAFKA_PIDFILE"
}

is_running() {
    local pid
    pid="$(broker_pid 2>/dev/null)" || return 1
    pid_alive_with "$pid" "kafka.Kafka $KAFKA_CONFIG"
}

# The broker answers Kafka requests: a metadata round trip with kafka-python when it is
# importable, else the "started" line in the log.
answers_requests() {
    port_open "$KAFKA_PORT" || return 1
    if "$PYTHON" -c 'import kafka' >/dev/null 2>&1; then
        "$PYTHON" - "$(cmd_bootstrap)" >/dev/null 2>&1 <<'EOF'
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
try:
    admin.list_topics()
finally:
    admin.close()
EOF
    else
        grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null
    fi
}

wait_until_ready() {
    local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    until answers_requests; do
        # Checked twice: while nohup/setsid exec into the JVM its command line can read empty for a moment.
        if ! is_running && ! { sleep 1; is_running; }; then
            show_log_tail "$KAFKA_LOG" 60
            die "the Kafka broker exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$KAFKA_LOG" 60
            die "the Kafka broker did not answer on $(cmd_bootstrap) within ${KAFKA_START_TIMEOUT}s"
        fi
        sleep 1
    done
}

check_ports_free() {
    local port
    for port in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
        if port_open "$port"; then
            die "port $KAFKA_HOST:$port is already in use by another process (see CRM_KAFKA_PORT / CRM_KAFKA_CONTROLLER_PORT)"
        fi
    done
}

launch_broker() {
    if [[ -f "$KAFKA_LOG" ]]; then mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"; fi
    java_command kafka.Kafka "$KAFKA_CONFIG"
    # setsid: the broker must not die with the caller's terminal or process group.
    # (setsid execs in place here, so $! is the JVM's pid.)
    nohup setsid "${JAVA_COMMAND[@]}" >"$KAFKA_LOG" 2>&1 </dev/null &
    echo $! >"$KAFKA_PIDFILE"
}

cmd_start() {
    cmd_install
    if is_running; then
        wait_until_ready
        log "already running (pid $(broker_pid)) on $(cmd_bootstrap)"
        return 0
    fi
    rm -f "$KAFKA_PIDFILE"
    check_ports_free
    write_server_properties
    format_storage_if_needed
    log "starting Kafka $KAFKA_VERSION on $(cmd_bootstrap) (log: $KAFKA_LOG)"
    local started=$SECONDS
    launch_broker
    wait_until_ready
    log "ready in $((SECONDS - started))s: $(cmd_bootstrap)"
}

cmd_stop() {
    resolve_paths
    if ! is_running; then
        rm -f "$KAFKA_PIDFILE"
        log "not running"
        return 0
    fi
    local pid deadline
    pid="$(broker_pid)"
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "no clean shutdown after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$KAFKA_PIDFILE"
}

cmd_status() {
    resolve_paths
    if ! is_running; then
        echo "kafka: stopped"
        return 3
    fi
    if answers_requests; then
        echo "kafka: running (pid $(broker_pid)) Kafka $KAFKA_VERSION on $(cmd_bootstrap) data=$KAFKA_DATA"
        return 0
    fi
    echo "kafka: started (pid $(broker_pid)) but not answering on $(cmd_bootstrap)"
    return 1
}

cmd_bootstrap() {
    printf '%s:%s\n' "$KAFKA_HOST" "$KAFKA_PORT"
}

main() {
    case "${1:-}" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        bootstrap) cmd_bootstrap ;;
        *) usage_and_exit "{install|start|stop|status|bootstrap}" ;;
    esac
}

main "$@"
