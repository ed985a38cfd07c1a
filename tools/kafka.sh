#!/usr/bin/env bash
# Apache Kafka 4.x from Maven Central, as a reference broker and as a source of Kafka's own tools.
#
#   tools/kafka.sh fetch                 download the broker + tools jars (once; cached)
#   tools/kafka.sh start DIR [PORT] [KEY=VALUE...]
#                                        format and start a single-node KRaft broker on 127.0.0.1:PORT
#                                        (controller on PORT+1, default 9092), extra server properties
#                                        appended, wait until it serves, print start-up time and RSS
#   tools/kafka.sh stop DIR              stop the broker started in DIR (by its recorded pid)
#   tools/kafka.sh run CLASS|ALIAS ARGS  run a Kafka class (e.g. org.apache.kafka.tools.TopicCommand)
#   tools/kafka.sh home                  print the folder that holds libs/ and config/
#
# Aliases for `run`: topics, console-producer, console-consumer, producer-perf, consumer-perf,
# e2e-latency, api-versions, get-offsets, configs, consumer-groups, storage, metadata-quorum.
#
# Environment: KAFKA_VERSION (default 4.3.1), KAFKA_HOME (default tools/kafka-dist/target/kafka-VER),
# KAFKA_HEAP_OPTS (broker, default -Xms1g -Xmx1g as Kafka's own scripts), KAFKA_TOOL_HEAP_OPTS
# (tools, default -Xmx512m), KAFKA_OPTS (extra JVM flags), KAFKA_START_TIMEOUT_S (default 60).
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
KAFKA_HOME=${KAFKA_HOME:-$TOOLS_DIR/kafka-dist/target/kafka-$KAFKA_VERSION}
# Kafka's own JVM flags (from its kafka-run-class.sh), kept so that benchmark numbers are comparable.
JVM_PERF_OPTS="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
-XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true"

die() { echo "kafka.sh: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

write_log_config() {
  mkdir -p "$KAFKA_HOME/config"
  # log4j2 reads .properties natively; YAML would need an extra jar on the class path.
  cat >"$KAFKA_HOME/config/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
  # Tools print their results on stdout: keep their logging on stderr and quiet.
  cat >"$KAFKA_HOME/config/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

cmd_fetch() {
  local libs="$KAFKA_HOME/libs" marker="$KAFKA_HOME/libs/.complete"
  if [[ -f $marker ]]; then write_log_config; echo "$KAFKA_HOME"; return; fi
  command -v mvn >/dev/null || die "mvn not found (install Maven)"
  local t0; t0=$(now_ms)
  rm -rf "$libs"
  mkdir -p "$KAFKA_HOME"
  # Maven's quiet mode still prints colour codes; keep its output for failures only.
  mvn -B -q -f "$TOOLS_DIR/kafka-dist/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >"$KAFKA_HOME/fetch.log" 2>&1 \
    || { cat "$KAFKA_HOME/fetch.log" >&2; die "Maven could not fetch Kafka $KAFKA_VERSION"; }
  # Exactly one SLF4J binding must be present, or Kafka logs nothing (or warns about several).
  local bindings; bindings=$(find "$libs" -maxdepth 1 -regextype egrep \
    -regex '.*/(log4j-slf4j2?-impl|slf4j-reload4j|logback-classic|slf4j-simple)-[^/]*\.jar' | wc -l)
  [[ $bindings == 1 ]] || die "expected one SLF4J binding in $libs, found $bindings"
  for j in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
    [[ -f $libs/$j ]] || die "missing $libs/$j"
  done
  touch "$marker"
  write_log_config
  echo "kafka.sh: fetched Kafka $KAFKA_VERSION ($(find "$libs" -name '*.jar' | wc -l) jars, $(du -sh "$libs" | cut -f1)) in $(( $(now_ms) - t0 )) ms" >&2
  echo "$KAFKA_HOME"
}

ensure_fetched() { [[ -f $KAFKA_HOME/libs/.complete ]] || cmd_fetch >/dev/null; }

resolve_class() {
  case $1 in
    topics) echo org.apache.kafka.tools.TopicCommand ;;
    console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    producer-perf) echo org.apache.kafka.tools.ProducerPerformance ;;
    consumer-perf) echo org.apache.kafka.tools.ConsumerPerformance ;;
    e2e-latency) echo org.apache.kafka.tools.EndToEndLatency ;;
    api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    configs) echo kafka.admin.ConfigCommand ;;
    consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    storage) echo kafka.tools.StorageTool ;;
    *) echo "$1" ;;
  esac
}

cmd_run() {
  [[ $# -ge 1 ]] || usage
  ensure_fetched
  local class; class=$(resolve_class "$1"); shift
  # shellcheck disable=SC2086 # option strings are meant to split into words
  exec java ${KAFKA_TOOL_HEAP_OPTS:--Xmx512m} -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_HOME/config/tools-log4j2.properties" \
    -cp "$KAFKA_HOME/libs/*" ${KAFKA_OPTS:-} "$class" "$@"
}

write_server_properties() {
  local dir=$1 port=$2 controller_port=$(( $2 + 1 ))
  shift 2
  cat >"$dir/server.properties" <<EOF
# Single node, combined broker+controller, static quorum (no KIP-853 directory-id bookkeeping).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
# Defaults are 3: on one node they would leave every consumer group and transaction without a coordinator.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
delete.topic.enable=true
EOF
  # Later lines win in Java properties files, so extra settings override the ones above.
  local kv
  for kv in "$@"; do
    [[ $kv == *=* ]] || die "server property '$kv' is not KEY=VALUE"
    echo "$kv" >>"$dir/server.properties"
  done
}

pid_is_kafka_of() {
  local pid=$1 dir=$2
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- "kafka.Kafka $dir/server.properties"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo 0; }

cmd_start() {
  [[ $# -ge 1 ]] || usage
  local dir port=${2:-9092}
  mkdir -p "$1"; dir=$(cd "$1" && pwd)
  shift; [[ $# -gt 0 ]] && shift
  if [[ -f $dir/pid ]] && pid_is_kafka_of "$(cat "$dir/pid")" "$dir"; then die "already running in $dir (pid $(cat "$dir/pid"))"; fi
  ensure_fetched
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "127.0.0.1:$port is already in use"; fi
  write_server_properties "$dir" "$port" "$@"
  local cid
  # A random type-4 UUID in Kafka's 22-character base64url form, without starting a JVM for it.
  # Like Kafka's own Uuid.randomUuid(), never one that starts with '-': the argument parser would
  # take it for an option (seen here: "argument --cluster-id/-t: expected one argument").
  cid=$(python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    if not s.startswith("-"):
        print(s)
        break
')
  if [[ ! -f $dir/data/meta.properties ]]; then
    KAFKA_TOOL_HEAP_OPTS=-Xmx256m cmd_run_sub storage format --cluster-id="$cid" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "storage format failed"; }
  fi
  local t0; t0=$(now_ms)
  # shellcheck disable=SC2086
  setsid java ${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g} $JVM_PERF_OPTS \
    -Dlog4j2.configurationFile="$KAFKA_HOME/config/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$KAFKA_HOME/libs/*" ${KAFKA_OPTS:-} kafka.Kafka "$dir/server.properties" \
    >"$dir/server.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/pid"
  wait_ready "$dir" "$pid" "$port" "$t0"
}

# `run` execs; `start` needs it as a child process instead.
cmd_run_sub() { (cmd_run "$@"); }

wait_ready() {
  local dir=$1 pid=$2 port=$3 t0=$4 deadline=$(( $(now_ms) + ${KAFKA_START_TIMEOUT_S:-60} * 1000 ))
  until grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/server.log" >&2; die "broker exited during start-up (log: $dir/server.log)"; }
    (( $(now_ms) < deadline )) || { tail -n 30 "$dir/server.log" >&2; die "broker not ready after ${KAFKA_START_TIMEOUT_S:-60}s"; }
    sleep 0.1
  done
  local ms=$(( $(now_ms) - t0 ))
  echo "$ms" >"$dir/startup_ms"
  echo "kafka.sh: Kafka $KAFKA_VERSION ready on 127.0.0.1:$port (pid $pid) after $ms ms, RSS $(( $(rss_kib "$pid") / 1024 )) MiB"
}

cmd_stop() {
  [[ $# -ge 1 ]] || usage
  local dir; dir=$(cd "$1" && pwd) || die "no such folder $1"
  [[ -f $dir/pid ]] || die "no pid file in $dir"
  local pid; pid=$(cat "$dir/pid")
  if ! pid_is_kafka_of "$pid" "$dir"; then rm -f "$dir/pid"; echo "kafka.sh: not running (stale pid $pid)"; return; fi
  kill -TERM "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "kafka.sh: pid $pid ignored SIGTERM for 30s, sending SIGKILL" >&2; kill -KILL "$pid"; fi
  rm -f "$dir/pid"
  echo "kafka.sh: stopped pid $pid"
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1; shift
  case $cmd in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    run) cmd_run "$@" ;;
    home) echo "$KAFKA_HOME" ;;
    -h|--help|help) usage ;;
    *) die "unknown command '$cmd' (fetch|start|stop|run|home)" ;;
  esac
}

main "$@"
