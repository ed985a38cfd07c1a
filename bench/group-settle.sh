#!/usr/bin/env bash
# Group settle time: how long a group of 10 Java consumers takes to own every partition exactly
# once again after 900 partitions are added to its 100-partition topic, with the classic protocol
# (the Java client's default assignors, which pick range/eager; and cooperative-sticky) and with
# KIP-848 (group.protocol=consumer), on Freshet and on Apache Kafka 4.3.1, one broker at a time.
#
#   bench/group-settle.sh [--rounds N] [--protocols LIST] [--consumers N] [--initial N] [--added N]
#                         [--suffix S]
#
# Rounds alternate the order (odd rounds Freshet first, even rounds Kafka first); every round
# starts each broker on an empty data directory, runs every protocol against it (a new topic and
# group each) and stops it. Writes bench/results/<UTC date>-group-settle.md (-rN added when N is
# not 3, then -S for --suffix S) and keeps the raw output in
# bench/results/raw/<stamp>-group-settle/ (gitignored).
#
# Environment: FRESHET_BIN (a freshet binary; default: cargo build --release -p freshet, honouring
# CARGO_TARGET_DIR; FRESHET_COMMIT names the commit it was built from), BENCH_PORT (default: a
# free port; Kafka's controller uses PORT+1),
# BENCH_BROKER_CPUS / BENCH_LOAD_CPUS (taskset lists as in bench/run.sh, default 1 and 0),
# BENCH_METADATA_MAX_AGE_MS (default 1000), BENCH_NOTE (a sentence for the results file).
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
ROUNDS=3
PROTOCOLS=classic-default,classic-cooperative-sticky,consumer
CONSUMERS=10
INITIAL=100
ADDED=900
SUFFIX=
ARGS_TEXT="$*"
# The exact command for the results file: the settings taken from the environment, then the arguments.
ENV_TEXT=
for v in FRESHET_BIN FRESHET_COMMIT CARGO_TARGET_DIR BENCH_PORT BENCH_BROKER_CPUS BENCH_LOAD_CPUS BENCH_METADATA_MAX_AGE_MS KAFKA_VERSION; do
  [[ -n ${!v:-} ]] && ENV_TEXT+="$v=${!v} "
done
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --protocols) PROTOCOLS=$2; shift 2 ;;
    --consumers) CONSUMERS=$2; shift 2 ;;
    --initial) INITIAL=$2; shift 2 ;;
    --added) ADDED=$2; shift 2 ;;
    --suffix) SUFFIX=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "group-settle.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
BROKER_CPUS=${BENCH_BROKER_CPUS:-1}
LOAD_CPUS=${BENCH_LOAD_CPUS:-0}
META_AGE=${BENCH_METADATA_MAX_AGE_MS:-1000}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -n ${BENCH_PORT:-} ]]; then
  PORT=$BENCH_PORT
else
  for _ in $(seq 1 50); do
    PORT=$(( 20000 + RANDOM % 40000 ))
    port_free "$PORT" && port_free $(( PORT + 1 )) && break
  done
fi
BOOT=127.0.0.1:$PORT

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$BENCH/results/raw/$STAMP-group-settle
OUT=$BENCH/results/$(date -u +%Y-%m-%d)-group-settle$([[ $ROUNDS != 3 ]] && echo "-r$ROUNDS" || true)${SUFFIX:+-$SUFFIX}.md
mkdir -p "$RAW"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$RAW/run.log" >&2; }

# The Java program (kafka-clients 4.3.1, the version tools/kafka.sh runs).
JAR=$BENCH/group-settle/target/group-settle-1.jar
if [[ ! -f $JAR || -n $(find "$BENCH/group-settle/src" "$BENCH/group-settle/pom.xml" -newer "$JAR" 2>/dev/null) ]]; then
  log "building bench/group-settle (mvn package)"
  mvn -q -B -f "$BENCH/group-settle/pom.xml" package >"$RAW/mvn.log" 2>&1 || { cat "$RAW/mvn.log" >&2; exit 1; }
fi
"$ROOT/tools/kafka.sh" fetch >/dev/null
if [[ -n ${FRESHET_BIN:-} ]]; then
  FRESHET=$FRESHET_BIN
else
  log "building freshet (release, CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target})"
  (cd "$ROOT" && cargo build --release -q -p freshet)
  FRESHET=${CARGO_TARGET_DIR:-$ROOT/target}/release/freshet
fi
[[ -x $FRESHET ]] || { echo "group-settle.sh: no freshet binary at $FRESHET" >&2; exit 1; }

{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if [[ -n ${FRESHET_BIN:-} ]]; then
    echo "freshet_commit=${FRESHET_COMMIT:-unknown (FRESHET_BIN=$FRESHET_BIN; set FRESHET_COMMIT)}"
  else
    echo "freshet_commit=$(git -C "$ROOT" rev-parse --short HEAD)"
  fi
  echo "freshet_bin=$FRESHET"
  echo "kafka_version=${KAFKA_VERSION:-4.3.1}"
  echo "cpus=$(nproc)"
  echo "cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "mem_total=$(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "java=$(java -version 2>&1 | head -1)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/machine.txt"

BROKER_PID=
BROKER_DIR=
stop_broker() {
  local broker=$1
  case $broker in
    freshet)
      if [[ -n $BROKER_PID ]]; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
      fi
      ;;
    kafka) "$ROOT/tools/kafka.sh" stop "$BROKER_DIR" >>"$RAW/kafka-start.log" 2>&1 || true ;;
  esac
  BROKER_PID=
  while ! port_free "$PORT"; do sleep 0.1; done
  rm -rf "$BROKER_DIR"
}
CURRENT=
cleanup() { [[ -n $CURRENT ]] && stop_broker "$CURRENT"; true; }
trap cleanup EXIT

start_broker() {
  local broker=$1
  port_free "$PORT" || { echo "group-settle.sh: port $PORT busy" >&2; exit 1; }
  BROKER_DIR=$RAW/data-$broker
  rm -rf "$BROKER_DIR"; mkdir -p "$BROKER_DIR"
  CURRENT=$broker
  case $broker in
    freshet)
      # Same initial rebalance delay as the Kafka broker below (Freshet's default is Kafka's 3 s).
      FRESHET_GROUP_INITIAL_REBALANCE_DELAY_MS=0 setsid taskset -c "$BROKER_CPUS" "$FRESHET" serve \
        --data-dir "$BROKER_DIR/data" --listen "$BOOT" >>"$RAW/freshet-server.log" 2>&1 </dev/null &
      BROKER_PID=$!
      local deadline=$(( SECONDS + 30 ))
      until ! port_free "$PORT"; do
        kill -0 "$BROKER_PID" 2>/dev/null || { tail -20 "$RAW/freshet-server.log" >&2; exit 1; }
        (( SECONDS < deadline )) || { echo "freshet not listening after 30 s" >&2; exit 1; }
        sleep 0.05
      done
      ;;
    kafka)
      taskset -c "$BROKER_CPUS" "$ROOT/tools/kafka.sh" start "$BROKER_DIR" "$PORT" \
        group.initial.rebalance.delay.ms=0 >>"$RAW/kafka-start.log" 2>&1
      BROKER_PID=$(cat "$BROKER_DIR/pid")
      ;;
  esac
}

log "group settle: $ROUNDS rounds, protocols $PROTOCOLS, $CONSUMERS consumers, $INITIAL + $ADDED partitions, port $PORT, raw output in $RAW"
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 == 1 )); then order=(freshet kafka); else order=(kafka freshet); fi
  for broker in "${order[@]}"; do
    log "round $round: starting $broker"
    start_broker "$broker"
    set +e
    taskset -c "$LOAD_CPUS" java -Xmx512m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -cp "$JAR:$BENCH/group-settle/target/lib/*" dev.freshet.bench.GroupSettle \
      --bootstrap "$BOOT" --broker "$broker" --protocols "$PROTOCOLS" --consumers "$CONSUMERS" \
      --initial "$INITIAL" --added "$ADDED" --metadata-max-age-ms "$META_AGE" --tag "r$round" \
      2>>"$RAW/$broker-r$round.err" | while IFS= read -r line; do
        echo "$line"
        [[ $line == RESULT* ]] && echo "round=$round ${line#RESULT }" >>"$RAW/results.txt"
      done
    rc=${PIPESTATUS[0]}
    set -e
    (( rc == 0 )) || log "round $round: $broker: the program exited with $rc (see $RAW/$broker-r$round.err)"
    stop_broker "$broker"
    CURRENT=
  done
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/machine.txt"

python3 - "$RAW" "$OUT" "${ENV_TEXT}bench/group-settle.sh${ARGS_TEXT:+ $ARGS_TEXT}" "${BENCH_NOTE:-}" "$META_AGE" \
  "$CONSUMERS" "$INITIAL" "$ADDED" "$BROKER_CPUS" "$LOAD_CPUS" <<'EOF'
import statistics, sys
raw, out, cmd, note, meta_age, consumers, initial, added, broker_cpus, load_cpus = sys.argv[1:]
machine = dict(l.split("=", 1) for l in open(f"{raw}/machine.txt").read().splitlines() if "=" in l)
runs = []
for line in open(f"{raw}/results.txt"):
    runs.append(dict(kv.split("=", 1) for kv in line.split()))
protocols = list(dict.fromkeys(r["protocol"] for r in runs))

def values(broker, protocol, field="settle_ms"):
    return [r.get(field, r["settle_ms"]) for r in runs if r["broker"] == broker and r["protocol"] == protocol]

def median(vals):
    nums = [int(v) for v in vals if v.lstrip("-").isdigit()]
    if not nums or len(nums) != len(vals):
        return None
    return statistics.median(nums)

def show(m, vals):
    if m is not None:
        return f"{m:.0f}"
    return "/".join(sorted(set(v for v in vals if not v.lstrip('-').isdigit()))) or "-"

lines = [f"# Group settle time after adding partitions: Freshet vs Apache Kafka {machine.get('kafka_version')}", ""]
lines += [f"Command: `{cmd}`", ""]
if note:
    lines += [note, ""]
lines += [
    f"{consumers} Java consumers (kafka-clients 4.3.1, one JVM, one thread each) in one group subscribed to a topic of "
    f"{initial} partitions; once every partition has been owned by exactly one consumer with no change for 6 s, "
    f"Admin.createPartitions raises the topic to {int(initial) + int(added)} partitions. **settle_ms** runs from that "
    f"call returning until the partitions the consumers own (as their rebalance listeners report them, on their poll "
    f"threads) cover all {int(initial) + int(added)} exactly once, a state that must then hold for 6 s (a later "
    f"revocation or another rebalance round restarts the clock). Lower is better; the ratio is Freshet / Kafka.",
    "",
    f"Client settings: metadata.max.age.ms={meta_age} for both brokers (classic consumers only learn of new partitions "
    f"from a metadata refresh, so the default 300000 would measure the refresh period), enable.auto.commit=false, "
    f"everything else the client's defaults (classic heartbeat.interval.ms 3000; KIP-848 members heartbeat at the "
    f"interval the broker gives, 5000 ms by default on both brokers). Protocols: `classic-default` = "
    f"group.protocol=classic with the default partition.assignment.strategy [range, cooperative-sticky], which "
    f"selects range and eager rebalancing; `classic-cooperative-sticky` = classic with cooperative-sticky only; "
    f"`consumer` = KIP-848 group.protocol=consumer with the broker's default assignor (uniform).",
    "",
    f"Brokers: group.initial.rebalance.delay.ms=0 on both (Kafka via `tools/kafka.sh start DIR PORT "
    f"group.initial.rebalance.delay.ms=0`, Freshet via FRESHET_GROUP_INITIAL_REBALANCE_DELAY_MS=0), each alone on "
    f"the machine in turn, fresh data directory per round, rounds alternate which broker goes first. Broker pinned "
    f"to CPU {broker_cpus}, the consumers' JVM to CPU {load_cpus} (taskset).",
    "",
    f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), {machine.get('mem_total')} RAM, kernel {machine.get('kernel')}, "
    f"{machine.get('java')}. Freshet commit {machine.get('freshet_commit')}. Load average at start "
    f"{machine.get('loadavg_start')}, at end {machine.get('loadavg_end')}.",
    "",
    "## Medians",
    "",
    "| protocol | measured from | Freshet ms | Kafka ms | Freshet / Kafka | Freshet runs | Kafka runs |",
    "|---|---|---:|---:|---:|---|---|",
]
for p in protocols:
    for field, label in (("settle_ms", "createPartitions returned"), ("settle_from_call_ms", "createPartitions called"),
                         ("create_partitions_ms", "(the createPartitions call itself)")):
        fv, kv = values("freshet", p, field), values("kafka", p, field)
        fm, km = median(fv), median(kv)
        # A ratio of a negative time (settled before the call returned) means nothing.
        ratio = f"{fm / km:.2f}" if fm is not None and km is not None and fm > 0 and km > 0 else "-"
        lines.append(f"| {p} | {label} | {show(fm, fv)} | {show(km, kv)} | {ratio} | {', '.join(fv)} | {', '.join(kv)} |")
lines += ["", "## Every run", "", "| round | broker | protocol | settle_ms | other fields |", "|---:|---|---|---:|---|"]
for r in runs:
    rest = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("round", "broker", "protocol", "settle_ms"))
    lines.append(f"| {r['round']} | {r['broker']} | {r['protocol']} | {r['settle_ms']} | {rest} |")
lines += ["", "settle_ms is negative when the group owned every new partition before the createPartitions answer "
          "arrived (the broker had made them visible before answering); settle_from_call_ms counts from just before the "
          "call instead, create_partitions_ms is the call's own duration, create_topic_ms the CreateTopics call for the "
          "initial partitions. "
          "first_new_assigned_ms: when a consumer's listener first received one of the added partitions; "
          "initial_stable_ms: from starting the consumers to the quiet state before the addition (includes the 6 s "
          "quiet period); assign_callbacks: onPartitionsAssigned calls across the group after the addition; "
          "per_consumer: fewest..most partitions one consumer owns at the end; heartbeats_per_s: heartbeat requests sent by "
          "the whole group per second from the createPartitions call to the end of the 6 s hold (the clients' "
          "heartbeat-total metric)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines[lines.index("## Medians"):]))
EOF
log "wrote $OUT"
