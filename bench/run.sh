#!/usr/bin/env bash
# Freshet against Apache Kafka, same machine, same disk, same load generators, one broker at a time.
#
#   bench/run.sh [--quick] [--rounds N] [--only produce,consume,e2e,startup]
#
# --quick     1 round, small record counts: a smoke run of a few minutes
# --rounds N  rounds (default 3); each round runs Freshet and Kafka in turn, alternating who goes first
# --estimate  print the estimated duration of the run these options describe, and exit
# --only      a subset of the workloads (default produce,consume,e2e,startup; add partitions10k
#             for the 10,000-partition topic, which is opt-in because Kafka takes minutes on it)
#
# Writes bench/results/<UTC date>[-quick].md and its PNG charts; raw figures and logs go to
# bench/results/raw/<stamp>/ (gitignored). See docs/bench.md for what each row means.
#
# Environment: BENCH_DATA (default bench/.data: the disk under test), BENCH_PORT (default 19092;
# Kafka's controller uses PORT+1), BENCH_BROKER_CPUS (default 1), BENCH_LOAD_CPUS (default 0),
# CARGO_TARGET_DIR (default target), BENCH_NOTE (a sentence for the top of the results file,
# e.g. what else the machine was running), BENCH_E2E_RATE (default 20000 records/s of 1 KiB;
# 5000 with --quick), BENCH_OUT (results file name without .md, instead of the date-based one,
# or a path such as /tmp/trial: for trial runs that must not overwrite a committed file), FRESHET_BIN (a built freshet binary:
# skips the cargo build).
set -Eeuo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
QUICK=0
ROUNDS=3
ONLY=produce,consume,e2e,startup
ESTIMATE_ONLY=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1; ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --estimate) ESTIMATE_ONLY=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

DATA=${BENCH_DATA:-$BENCH/.data}
PORT=${BENCH_PORT:-19092}
BOOT=127.0.0.1:$PORT
BROKER_CPUS=${BENCH_BROKER_CPUS:-1}
LOAD_CPUS=${BENCH_LOAD_CPUS:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FRESHET=${FRESHET_BIN:-$CARGO_TARGET_DIR/release/freshet}
# Consumer groups form at once on both brokers (Kafka's default delay is 3 s, which would count
# in ConsumerPerformance's group join): Freshet through its environment, Kafka through
# group.initial.rebalance.delay.ms=0 in KAFKA_PROPS.
export FRESHET_GROUP_INITIAL_REBALANCE_DELAY_MS=0
KAFKA_PROPS=(group.initial.rebalance.delay.ms=0)
PY=$BENCH/.venv/bin/python
CLK_TCK=$(getconf CLK_TCK)

if [[ $QUICK == 1 ]]; then
  RECORDS_1K=30000; RECORDS_100B=150000; E2E_SECONDS=5; DD_MIB=256; TCP_MIB=512
  NATIVE_1K=50000; NATIVE_100B=200000; E2E_JAVA_RECORDS=1000
  E2E_RATE=${BENCH_E2E_RATE:-5000}
else
  RECORDS_1K=200000; RECORDS_100B=1000000; E2E_SECONDS=20; DD_MIB=1024; TCP_MIB=2048
  NATIVE_1K=500000; NATIVE_100B=2000000; E2E_JAVA_RECORDS=3000
  E2E_RATE=${BENCH_E2E_RATE:-20000}
fi
# freshet perf sends as many 1 KiB records as ProducerPerformance and half as many of 100 B (it
# is slower than ProducerPerformance at 100 B against Kafka with fsync: 9,000-23,000 records/s on
# a loaded machine).
PERF_1K=$RECORDS_1K; PERF_100B=$(( RECORDS_100B / 2 ))
SIZES=(1024 100)
PARTITIONS=(1 8)
ACKS=(1 all)
PERF_ACKS=(all)
CODECS=(none lz4)
MODES=(nofsync fsync)

STAMP=$(date -u +%Y%m%dT%H%M%SZ)-$$  # the pid keeps two runs started in the same second apart
RAW=$BENCH/results/raw/$STAMP
# <date>.md for a default run; -quick and -rN mark the runs that are not (so they never overwrite it).
OUT_NAME=$(date -u +%Y-%m-%d)$([[ $QUICK == 1 ]] && echo -quick || true)$([[ $ROUNDS != "$((QUICK == 1 ? 1 : 3))" ]] && echo "-r$ROUNDS" || true)
OUT_NAME=${BENCH_OUT:-$OUT_NAME}
# A name goes to bench/results/; a path (with a /) is used as it is.
if [[ $OUT_NAME == */* ]]; then OUT_PATH=$OUT_NAME; else OUT_PATH=$BENCH/results/$OUT_NAME; fi
mkdir -p "$RAW" "$DATA"
JSONL=$RAW/results.jsonl
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$RAW/run.log" >&2; }
wants() { [[ ,$ONLY, == *,$1,* ]]; }
# errexit stops the run at an unexpected failure: say where (failures that are handled, as in
# `if ! out=$(...)`, are logged too), instead of ending silently.
trap 'log "run.sh: command failed at line $LINENO: $BASH_COMMAND"' ERR

# One figure: round broker mode workload case metric value unit better(higher|lower)
record() {
  printf '{"round":%s,"broker":"%s","mode":"%s","workload":"%s","case":"%s","metric":"%s","value":%s,"unit":"%s","better":"%s"}\n' \
    "$@" >>"$JSONL"
}

setup() {
  if [[ -n ${FRESHET_BIN:-} ]]; then
    log "using FRESHET_BIN=$FRESHET_BIN (no build)"
  else
    log "building freshet (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release -q -p freshet)
  fi
  if [[ ! -x $PY ]] || ! "$PY" -c 'import confluent_kafka, matplotlib' 2>/dev/null; then
    log "creating bench/.venv (confluent-kafka, matplotlib)"
    python3 -m venv "$BENCH/.venv"
    "$PY" -m pip install -q -r "$BENCH/requirements.txt"
  fi
  log "fetching Kafka"
  "$ROOT/tools/kafka.sh" fetch >/dev/null
}

machine_info() {
  {
    echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores=$(nproc)"
    echo "mem_total_mib=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))"
    echo "kernel=$(uname -r)"
    echo "fs=$(df -T "$DATA" | awk 'NR==2 {print $1" "$2}')"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "java=$(java -version 2>&1 | head -1)"
    echo "freshet_commit=$(git -C "$ROOT" rev-parse --short HEAD)"
    echo "kafka=${KAFKA_VERSION:-4.3.1}"
    echo "broker_cpus=$BROKER_CPUS load_cpus=$LOAD_CPUS"
    echo "rounds=$ROUNDS quick=$QUICK records_1k=$RECORDS_1K records_100b=$RECORDS_100B e2e_rate=$E2E_RATE e2e_seconds=$E2E_SECONDS"
  } >"$RAW/machine.txt"
}

ceilings() {
  local round=$1
  local line
  line=$(dd if=/dev/zero of="$DATA/dd.tmp" bs=1M count="$DD_MIB" conv=fdatasync 2>&1 | tail -1)
  rm -f "$DATA/dd.tmp"
  # "268435456 bytes (268 MB, 256 MiB) copied, 1.2 s, 223 MB/s": bytes / seconds, not dd's rounded unit.
  local mbps
  mbps=$(awk -F'[ ,]+' '{for (i=1;i<=NF;i++) if ($i=="copied") {printf "%.1f", $1/$(i+1)/1e6}}' <<<"$line")
  record "$round" machine - ceiling "dd-1MiB-fdatasync" disk_mb_per_s "${mbps:-null}" MB/s higher
  local tcp
  tcp=$(taskset -c "$LOAD_CPUS,$BROKER_CPUS" "$PY" "$BENCH/native.py" tcp-ceiling --mib "$TCP_MIB" | "$PY" -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["mb_per_s"])')
  record "$round" machine - ceiling "loopback-tcp" tcp_mb_per_s "$tcp" MB/s higher
  log "ceilings: disk ${mbps} MB/s (dd conv=fdatasync), loopback TCP ${tcp} MB/s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# Starts BROKER in DIR for MODE; sets BROKER_PID.
start_broker() {
  local broker=$1 mode=$2 dir=$3
  if port_open; then echo "run.sh: port $PORT busy" >&2; exit 1; fi
  case $broker in
    freshet)
      mkdir -p "$dir/data"
      setsid taskset -c "$BROKER_CPUS" "$FRESHET" serve --data-dir "$dir/data" --listen "$BOOT" \
        >>"$dir/server.log" 2>&1 </dev/null &
      BROKER_PID=$!
      echo "$BROKER_PID" >"$dir/freshet.pid"
      local deadline=$(( SECONDS + 30 ))
      until port_open; do
        kill -0 "$BROKER_PID" 2>/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
        (( SECONDS < deadline )) || { echo "freshet not listening after 30 s" >&2; exit 1; }
        sleep 0.02
      done
      ;;
    kafka)
      local props=("${KAFKA_PROPS[@]}")
      [[ $mode == fsync ]] && props+=(log.flush.interval.messages=1)
      taskset -c "$BROKER_CPUS" "$ROOT/tools/kafka.sh" start "$dir" "$PORT" "${props[@]}" >>"$RAW/kafka-start.log" 2>&1
      BROKER_PID=$(cat "$dir/pid")
      ;;
  esac
}

stop_broker() {
  local broker=$1 dir=$2
  case $broker in
    freshet)
      kill -TERM "$BROKER_PID" 2>/dev/null || true
      for _ in $(seq 1 300); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$BROKER_PID" 2>/dev/null || true
      wait "$BROKER_PID" 2>/dev/null || true
      ;;
    kafka) "$ROOT/tools/kafka.sh" stop "$dir" >>"$RAW/kafka-start.log" 2>&1 || true ;;
  esac
  while port_open; do sleep 0.1; done
}

# ProducerPerformance cases left out to keep a full 3-round run near an hour on 2 cores: 100 B
# lz4 on one partition (the 100 B p8 lz4 rows stay; 100 B batches of one partition compress
# the same way).
pp_skipped() { [[ $1 == 100 && $2 == 1 && $3 == lz4 ]]; }

# A rough duration (seconds) of the run ahead, from per-case costs seen on a quiet 2-core
# machine (Kafka's tools take about 3 s to start a JVM; rates are the slower broker's).
estimate_s() {
  local pp=0 s p a c
  for s in "${SIZES[@]}"; do for p in "${PARTITIONS[@]}"; do for a in "${ACKS[@]}"; do for c in "${CODECS[@]}"; do
    pp_skipped "$s" "$p" "$c" || pp=$(( pp + 3 + (s == 1024 ? RECORDS_1K / 25000 : RECORDS_100B / 110000) ))
  done; done; done; done
  local native=$(( 2 * (2 + NATIVE_1K / 300000 + NATIVE_100B / 700000) ))
  local perf=$(( ${#PERF_ACKS[@]} * 2 * (2 + PERF_1K / 40000 + PERF_100B / 60000) ))
  local consume=$(( 2 * (2 + RECORDS_1K / 500000 + RECORDS_100B / 1000000) + 3 * 9 ))
  local e2e=$(( E2E_SECONDS + 3 + 4 + E2E_JAVA_RECORDS * 4 / 1000 ))
  local per_mode=0 total
  wants produce && per_mode=$(( per_mode + pp + native + perf ))
  wants e2e && per_mode=$(( per_mode + e2e ))
  # Start, topics, stop: Freshet 5 s, Kafka 30 s; the nofsync restart and cold reads.
  local round_s=$(( 2 * (2 * per_mode + 35) + 25 ))
  wants consume && wants produce && round_s=$(( round_s + 2 * consume ))
  wants partitions10k && round_s=$(( round_s + 60 + 420 ))
  total=$(( ROUNDS * round_s + 2 * (DD_MIB / 500 + TCP_MIB / 1000 + 2) ))
  echo "$total"
}

topic_name() { echo "t-$1B-p$2-acks$3-$4"; }

records_for() { [[ $1 == 1024 ]] && echo "$RECORDS_1K" || echo "$RECORDS_100B"; }

create_topics() {
  local broker=$1 mode=$2 specs=() suffix=""
  [[ $broker == freshet && $mode == nofsync ]] && suffix=":nofsync"
  local s p a c
  for s in "${SIZES[@]}"; do for p in "${PARTITIONS[@]}"; do for a in "${ACKS[@]}"; do for c in "${CODECS[@]}"; do
    pp_skipped "$s" "$p" "$c" && continue
    specs+=("$(topic_name "$s" "$p" "$a" "$c"):$p$suffix")
  done; done; done; done
  for s in "${SIZES[@]}"; do for p in "${PARTITIONS[@]}"; do
    specs+=("n-${s}B-p$p:$p$suffix")
    for a in "${PERF_ACKS[@]}"; do specs+=("f-${s}B-p$p-acks$a:$p$suffix"); done
  done; done
  specs+=("e2e:1$suffix" "e2e-java:1$suffix" "startup:1$suffix")
  taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" admin-create --bootstrap "$BOOT" "${specs[@]}" >/dev/null
}

# ProducerPerformance's summary line: "N records sent, R records/sec (M MB/sec), A ms avg latency,
# X ms max latency, p50 ms 50th, p95 ms 95th, p99 ms 99th, p999 ms 99.9th."
produce_case() {
  local round=$1 broker=$2 mode=$3 s=$4 p=$5 a=$6 c=$7
  local topic case_name n out
  topic=$(topic_name "$s" "$p" "$a" "$c")
  case_name="${s}B p$p acks=$a $c"
  n=$(records_for "$s")
  if ! out=$(taskset -c "$LOAD_CPUS" "$ROOT/tools/kafka.sh" run producer-perf --topic "$topic" \
      --num-records "$n" --record-size "$s" --throughput -1 \
      --producer-props bootstrap.servers="$BOOT" acks="$a" compression.type="$c" 2>>"$RAW/producer-perf.err"); then
    log "  FAILED produce $case_name on $broker ($mode): see $RAW/producer-perf.err"
    record "$round" "$broker" "$mode" produce "$case_name" mb_per_s null MB/s higher
    return
  fi
  echo "$broker $mode $case_name: $out" >>"$RAW/producer-perf.out"
  local summary
  summary=$(grep 'records sent' <<<"$out" | tail -1)
  local rps mbps avg p99
  rps=$(sed -E 's/.*sent, ([0-9.]+) records\/sec.*/\1/' <<<"$summary")
  mbps=$(sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/' <<<"$summary")
  avg=$(sed -E 's/.* ([0-9.]+) ms avg latency.*/\1/' <<<"$summary")
  p99=$(sed -E 's/.* ([0-9.]+) ms 99th.*/\1/' <<<"$summary")
  record "$round" "$broker" "$mode" produce "$case_name" mb_per_s "$mbps" MB/s higher
  record "$round" "$broker" "$mode" produce "$case_name" records_per_s "$rps" records/s higher
  record "$round" "$broker" "$mode" produce "$case_name" avg_latency_ms "$avg" ms lower
  record "$round" "$broker" "$mode" produce "$case_name" p99_latency_ms "$p99" ms lower
  log "  produce $case_name: $mbps MB/s, $rps rec/s, avg $avg ms, p99 $p99 ms"
  INGESTED_BYTES=$(( INGESTED_BYTES + n * s ))
}

# The native generator (librdkafka): acks=all, no compression, linger.ms=5, as fast as it goes.
native_produce_case() {
  local round=$1 broker=$2 mode=$3 s=$4 p=$5 n out
  n=$([[ $s == 1024 ]] && echo "$NATIVE_1K" || echo "$NATIVE_100B")
  local case_name="native ${s}B p$p acks=all none"
  if ! out=$(taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" produce --bootstrap "$BOOT" --topic "n-${s}B-p$p" \
      --partitions "$p" --records "$n" --size "$s" --acks all 2>>"$RAW/native.err"); then
    log "  FAILED $case_name on $broker"
    record "$round" "$broker" "$mode" produce "$case_name" mb_per_s null MB/s higher
    return
  fi
  local mbps rps
  mbps=$("$PY" -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["mb_per_s"])' <<<"$out")
  rps=$("$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["records_per_s"])' <<<"$out")
  record "$round" "$broker" "$mode" produce "$case_name" mb_per_s "$mbps" MB/s higher
  record "$round" "$broker" "$mode" produce "$case_name" records_per_s "$rps" records/s higher
  log "  produce $case_name: $mbps MB/s, $rps rec/s"
  INGESTED_BYTES=$(( INGESTED_BYTES + n * s ))
}

# Freshet's own generator (`freshet perf produce`, the Rust client: Kafka's producer defaults,
# batch.size 16384, linger.ms 5, sticky partitioner), JSON summary. MB/s here is 10^6 bytes/s, as
# for the librdkafka rows.
perf_produce_case() {
  local round=$1 broker=$2 mode=$3 s=$4 p=$5 a=$6 n out
  n=$([[ $s == 1024 ]] && echo "$PERF_1K" || echo "$PERF_100B")
  local case_name="perf ${s}B p$p acks=$a none"
  if ! out=$(taskset -c "$LOAD_CPUS" "$FRESHET" perf produce --bootstrap-server "$BOOT" --topic "f-${s}B-p$p-acks$a" \
      --num-records "$n" --record-size "$s" --acks "$a" --compression none --report-interval-ms 0 --json \
      2>>"$RAW/perf.err"); then
    log "  FAILED $case_name on $broker: see $RAW/perf.err"
    record "$round" "$broker" "$mode" produce "$case_name" mb_per_s null MB/s higher
    return
  fi
  echo "$broker $mode $case_name: $out" >>"$RAW/perf.out"
  local rps mbps avg p99
  read -r rps mbps avg p99 < <("$PY" -c 'import json,sys
j = json.load(sys.stdin); s = '"$s"'
print("%.0f %.2f %.3f %.3f" % (j["records_per_sec"], j["records_per_sec"] * s / 1e6, j["latency_ms"]["avg"], j["latency_ms"]["p99"]))' <<<"$out") || true
  if [[ -z ${p99:-} ]]; then
    log "  FAILED $case_name on $broker: unreadable summary: $out"
    record "$round" "$broker" "$mode" produce "$case_name" mb_per_s null MB/s higher
    return
  fi
  record "$round" "$broker" "$mode" produce "$case_name" mb_per_s "$mbps" MB/s higher
  record "$round" "$broker" "$mode" produce "$case_name" records_per_s "$rps" records/s higher
  record "$round" "$broker" "$mode" produce "$case_name" avg_latency_ms "$avg" ms lower
  record "$round" "$broker" "$mode" produce "$case_name" p99_latency_ms "$p99" ms lower
  log "  produce $case_name: $mbps MB/s, $rps rec/s, avg $avg ms, p99 $p99 ms"
  INGESTED_BYTES=$(( INGESTED_BYTES + n * s ))
}

produce_all() {
  local round=$1 broker=$2 mode=$3 s p a c
  INGESTED_BYTES=0
  local ticks0; ticks0=$(cpu_ticks "$BROKER_PID")
  for s in "${SIZES[@]}"; do for p in "${PARTITIONS[@]}"; do for a in "${ACKS[@]}"; do for c in "${CODECS[@]}"; do
    pp_skipped "$s" "$p" "$c" || produce_case "$round" "$broker" "$mode" "$s" "$p" "$a" "$c"
  done; done; done; done
  for s in "${SIZES[@]}"; do for p in "${PARTITIONS[@]}"; do
    native_produce_case "$round" "$broker" "$mode" "$s" "$p"
    for a in "${PERF_ACKS[@]}"; do perf_produce_case "$round" "$broker" "$mode" "$s" "$p" "$a"; done
  done; done
  local ticks1; ticks1=$(cpu_ticks "$BROKER_PID")
  if (( INGESTED_BYTES > 0 )); then
    local cpu_per_gb
    cpu_per_gb=$(awk -v t=$(( ticks1 - ticks0 )) -v hz="$CLK_TCK" -v b="$INGESTED_BYTES" 'BEGIN {printf "%.2f", t/hz/(b/1e9)}')
    record "$round" "$broker" "$mode" resources "all produce cases" cpu_s_per_gb "$cpu_per_gb" "CPU s/GB" lower
    log "  broker CPU: $cpu_per_gb s per GB ingested ($INGESTED_BYTES bytes)"
  fi
  record "$round" "$broker" "$mode" resources "peak during produce (VmHWM)" rss_mib "$(( $(status_kib "$BROKER_PID" VmHWM) / 1024 ))" MiB lower
  record "$round" "$broker" "$mode" resources "after produce (VmRSS)" rss_mib "$(( $(status_kib "$BROKER_PID" VmRSS) / 1024 ))" MiB lower
}

consume_case() {
  local round=$1 broker=$2 mode=$3 s=$4 p=$5 cache=$6
  local topic n out
  topic=$(topic_name "$s" "$p" 1 none)
  n=$(records_for "$s")
  if ! out=$(taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" consume --bootstrap "$BOOT" --topic "$topic" \
      --partitions "$p" --records "$n" 2>>"$RAW/native.err"); then
    log "  FAILED consume ${s}B p$p ($cache) on $broker"
    record "$round" "$broker" "$mode" consume "${s}B p$p $cache" mb_per_s null MB/s higher
    return
  fi
  local mbps rps
  mbps=$("$PY" -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["mb_per_s"])' <<<"$out")
  rps=$("$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["records_per_s"])' <<<"$out")
  record "$round" "$broker" "$mode" consume "${s}B p$p $cache" mb_per_s "$mbps" MB/s higher
  record "$round" "$broker" "$mode" consume "${s}B p$p $cache" records_per_s "$rps" records/s higher
  log "  consume ${s}B p$p ($cache): $mbps MB/s, $rps rec/s"
}

# Kafka's ConsumerPerformance, in a new consumer group (classic protocol, the tool's default) per
# run, from the earliest offset. Its line: start.time, end.time, data.consumed.in.MB, MB.sec,
# data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec;
# MB.sec counts the group join, fetch.MB.sec (= MB / (elapsed - rebalance time)) does not, and is
# the figure recorded as mb_per_s ("MB" = MiB, as the tool prints it).
consumer_perf_case() {
  local round=$1 broker=$2 mode=$3 s=$4 p=$5 cache=$6
  local topic n out line case_name="ConsumerPerformance ${s}B p$p $cache"
  topic=$(topic_name "$s" "$p" 1 none)
  n=$(records_for "$s")
  if ! out=$(taskset -c "$LOAD_CPUS" "$ROOT/tools/kafka.sh" run consumer-perf --bootstrap-server "$BOOT" \
      --topic "$topic" --num-records "$n" --timeout 60000 --group "cp-$round-$mode-$s-$p-${cache// /-}" \
      2>>"$RAW/consumer-perf.err"); then
    log "  FAILED $case_name on $broker: see $RAW/consumer-perf.err"
    record "$round" "$broker" "$mode" consume "$case_name" mb_per_s null MB/s higher
    return
  fi
  echo "$broker $mode $case_name: $out" >>"$RAW/consumer-perf.out"
  line=$(grep -E '^[0-9]{4}-' <<<"$out" | tail -1 || true)
  local consumed mbps_all rebalance fetch_mbps fetch_rps
  IFS=, read -r _ _ _ mbps_all consumed _ rebalance _ fetch_mbps fetch_rps <<<"${line// /}" || true
  if [[ ${consumed:-0} != "$n" ]]; then
    log "  FAILED $case_name on $broker: consumed ${consumed:-nothing} of $n records"
    record "$round" "$broker" "$mode" consume "$case_name" mb_per_s null MB/s higher
    return
  fi
  record "$round" "$broker" "$mode" consume "$case_name" mb_per_s "$fetch_mbps" MB/s higher
  record "$round" "$broker" "$mode" consume "$case_name" records_per_s "$fetch_rps" records/s higher
  record "$round" "$broker" "$mode" consume "$case_name" group_join_ms "$rebalance" ms lower
  record "$round" "$broker" "$mode" consume "$case_name" mb_per_s_with_join "$mbps_all" MB/s higher
  log "  consume $case_name: fetch $fetch_mbps MB/s, $fetch_rps rec/s, group join $rebalance ms ($mbps_all MB/s with it)"
}

# Kafka's EndToEndLatency: one record at a time, the next sent when the previous one was consumed,
# so it measures a produce+fetch round trip with nothing queued, not latency under load.
# Prints "Avg latency: A ms" and "Percentiles: 50th = X, 99th = Y, 99.9th = Z" (whole ms).
e2e_java_case() {
  local round=$1 broker=$2 mode=$3 out case_name="EndToEndLatency 1KiB acks=all one at a time"
  if ! out=$(taskset -c "$LOAD_CPUS" "$ROOT/tools/kafka.sh" run e2e-latency --bootstrap-server "$BOOT" \
      --topic e2e-java --num-records "$E2E_JAVA_RECORDS" --producer-acks all --record-size 1024 \
      2>>"$RAW/e2e-latency.err"); then
    log "  FAILED $case_name on $broker: see $RAW/e2e-latency.err"
    record "$round" "$broker" "$mode" e2e "$case_name" p50_ms null ms lower
    return
  fi
  echo "$broker $mode: $(grep -E 'latency|Percentiles' <<<"$out" | tr '\n' ' ')" >>"$RAW/e2e-latency.out"
  local avg p50 p99 p999
  avg=$(sed -nE 's/^Avg latency: ([0-9.]+) ms.*/\1/p' <<<"$out")
  read -r p50 p99 p999 < <(sed -nE 's/^Percentiles: 50th = ([0-9]+), 99th = ([0-9]+), 99.9th = ([0-9]+).*/\1 \2 \3/p' <<<"$out") || true
  if [[ -z $avg || -z $p999 ]]; then
    log "  FAILED $case_name on $broker: no summary in its output"
    record "$round" "$broker" "$mode" e2e "$case_name" p50_ms null ms lower
    return
  fi
  record "$round" "$broker" "$mode" e2e "$case_name" avg_latency_ms "$avg" ms lower
  record "$round" "$broker" "$mode" e2e "$case_name" p50_ms "$p50" ms lower
  record "$round" "$broker" "$mode" e2e "$case_name" p99_ms "$p99" ms lower
  record "$round" "$broker" "$mode" e2e "$case_name" p999_ms "$p999" ms lower
  log "  $case_name: avg $avg ms, p50 $p50, p99 $p99, p99.9 $p999 ms"
}

e2e_case() {
  local round=$1 broker=$2 mode=$3 out
  if ! out=$(taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" e2e --bootstrap "$BOOT" --topic e2e \
      --rate "$E2E_RATE" --size 1024 --seconds "$E2E_SECONDS" --acks all 2>>"$RAW/native.err"); then
    log "  FAILED e2e on $broker"
    return
  fi
  echo "{\"round\":$round,\"broker\":\"$broker\",\"mode\":\"$mode\",\"e2e\":$out}" >>"$RAW/e2e.jsonl"
  local k v
  for k in p50_ms p99_ms p999_ms max_ms achieved_rate; do
    v=$("$PY" -c "import json,sys; print('%.3f' % json.load(sys.stdin)['$k'])" <<<"$out")
    if [[ $k == achieved_rate ]]; then
      record "$round" "$broker" "$mode" e2e "1KiB ${E2E_RATE}/s acks=all" achieved_rate "$v" records/s higher
    else
      record "$round" "$broker" "$mode" e2e "1KiB ${E2E_RATE}/s acks=all" "$k" "$v" ms lower
    fi
  done
  log "  e2e: $(tr -d '\n' <<<"$out" | cut -c1-160)"
}

# Restart on the data the round wrote and time launch -> first acknowledged produce.
startup_case() {
  local round=$1 broker=$2 mode=$3 dir=$4 launch out
  case $broker in
    freshet) launch="exec taskset -c $BROKER_CPUS $FRESHET serve --data-dir $dir/data --listen $BOOT" ;;
    kafka)
      launch="taskset -c $BROKER_CPUS $ROOT/tools/kafka.sh start $dir $PORT ${KAFKA_PROPS[*]}"
      if [[ $mode == fsync ]]; then launch+=" log.flush.interval.messages=1"; fi
      ;;
  esac
  rm -f "$dir/startup_ms"
  if ! out=$(taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" first-produce --bootstrap "$BOOT" --topic startup \
      --launch "$launch" --log "$dir/restart.log" 2>>"$RAW/native.err"); then
    log "  FAILED startup on $broker"
  else
    local ms
    ms=$("$PY" -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["startup_to_first_produce_ms"])' <<<"$out")
    record "$round" "$broker" "$mode" startup "restart, cold cache, to first acked produce" startup_ms "$ms" ms lower
    log "  startup to first produce: $ms ms"
  fi
  # kafka.sh start returns once the broker serves; wait for it so that its pid file exists.
  if [[ $broker == kafka ]]; then
    for _ in $(seq 1 600); do [[ -s $dir/startup_ms && -f $dir/pid ]] && break; sleep 0.1; done
    BROKER_PID=$(cat "$dir/pid")
  else
    BROKER_PID=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out" 2>/dev/null || pgrep -f -- "--data-dir $dir/data" | head -1)
  fi
}

evict_cache() {
  "$PY" "$BENCH/native.py" evict "$1" >>"$RAW/evict.log"
}

one_broker() {
  local round=$1 broker=$2 mode=$3
  local dir=$DATA/r$round-$mode-$broker
  rm -rf "$dir"; mkdir -p "$dir"
  log "round $round: $broker ($mode)"
  local t0; t0=$(date +%s%3N)
  start_broker "$broker" "$mode" "$dir"
  log "  listening after $(( $(date +%s%3N) - t0 )) ms (pid $BROKER_PID)"
  sleep 2
  record "$round" "$broker" "$mode" resources "idle after start (VmRSS)" rss_mib "$(( $(status_kib "$BROKER_PID" VmRSS) / 1024 ))" MiB lower
  create_topics "$broker" "$mode"
  wants produce && produce_all "$round" "$broker" "$mode"
  if wants consume && [[ $mode == nofsync ]] && wants produce; then
    consume_case "$round" "$broker" "$mode" 1024 8 "page cache"
    consume_case "$round" "$broker" "$mode" 100 1 "page cache"
    consumer_perf_case "$round" "$broker" "$mode" 1024 8 "page cache"
    consumer_perf_case "$round" "$broker" "$mode" 100 1 "page cache"
  fi
  if wants e2e; then
    e2e_case "$round" "$broker" "$mode"
    e2e_java_case "$round" "$broker" "$mode"
  fi
  stop_broker "$broker" "$dir"
  # Restart on the round's data with its files out of the page cache: a cold start-up, then
  # cold reads (the files are evicted again after start-up read what it needed).
  if [[ $mode == nofsync ]] && { wants startup || { wants consume && wants produce; }; }; then
    evict_cache "$dir"
    startup_case "$round" "$broker" "$mode" "$dir"
    if wants consume && wants produce; then
      evict_cache "$dir"
      consume_case "$round" "$broker" "$mode" 1024 8 "cold cache"
      consume_case "$round" "$broker" "$mode" 100 1 "cold cache"
      evict_cache "$dir"
      consumer_perf_case "$round" "$broker" "$mode" 1024 8 "cold cache"
    fi
    stop_broker "$broker" "$dir"
  fi
  du -sh "$dir" >>"$RAW/disk-usage.txt" 2>/dev/null || true
  rm -rf "$dir"
}

# One topic of 10,000 partitions on a fresh broker: creation until every partition has a leader,
# Metadata request time, memory, then a restart timed to the first produce into partition 0.
partitions10k() {
  local round=$1 broker=$2 mode=nofsync out
  local dir=$DATA/r$round-10k-$broker
  rm -rf "$dir"; mkdir -p "$dir"
  log "round $round: $broker (10,000 partitions)"
  start_broker "$broker" "$mode" "$dir"
  if out=$(taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" many-partitions --bootstrap "$BOOT" --topic many \
      --partitions 10000 2>>"$RAW/native.err"); then
    local k
    for k in create_s metadata_ms_median; do
      record "$round" "$broker" "$mode" partitions10k "1 topic x 10,000 partitions" "$k" \
        "$("$PY" -c "import json,sys; print('%.3f' % json.load(sys.stdin)['$k'])" <<<"$out")" \
        "$([[ $k == create_s ]] && echo s || echo ms)" lower
    done
    record "$round" "$broker" "$mode" partitions10k "1 topic x 10,000 partitions" rss_mib "$(( $(status_kib "$BROKER_PID" VmRSS) / 1024 ))" MiB lower
    log "  10k partitions: $out"
    stop_broker "$broker" "$dir"
    local launch
    case $broker in
      freshet) launch="exec taskset -c $BROKER_CPUS $FRESHET serve --data-dir $dir/data --listen $BOOT" ;;
      # Kafka loads 10,000 partition logs for minutes: kafka.sh's own 60 s readiness wait would
      # give up (leaving the broker running but no startup_ms file to wait for).
      kafka) launch="KAFKA_START_TIMEOUT_S=900 taskset -c $BROKER_CPUS $ROOT/tools/kafka.sh start $dir $PORT ${KAFKA_PROPS[*]}" ;;
    esac
    rm -f "$dir/startup_ms"
    if out=$(taskset -c "$LOAD_CPUS" "$PY" "$BENCH/native.py" first-produce --bootstrap "$BOOT" --topic many \
        --launch "$launch" --log "$dir/restart.log" --timeout-s 900 2>>"$RAW/native.err"); then
      local ms
      ms=$("$PY" -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["startup_to_first_produce_ms"])' <<<"$out")
      record "$round" "$broker" "$mode" partitions10k "1 topic x 10,000 partitions" restart_to_first_produce_ms "$ms" ms lower
      log "  10k partitions: restart to first acked produce $ms ms"
    else
      log "  FAILED 10k restart on $broker"
    fi
    if [[ $broker == kafka ]]; then
      for _ in $(seq 1 9000); do [[ -s $dir/startup_ms && -f $dir/pid ]] && break; sleep 0.1; done
      BROKER_PID=$(cat "$dir/pid")
    else
      BROKER_PID=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out" 2>/dev/null || pgrep -f -- "--data-dir $dir/data" | head -1)
    fi
  else
    log "  FAILED 10k partitions on $broker"
  fi
  stop_broker "$broker" "$dir"
  rm -rf "$dir"
}

main() {
  local est t_start=$SECONDS
  est=$(estimate_s)
  if [[ $ESTIMATE_ONLY == 1 ]]; then
    rm -rf "$RAW"
    echo "estimated duration: about $(( (est + 59) / 60 )) min ($ROUNDS rounds, workloads $ONLY; excluding the build)"
    return
  fi
  log "estimated duration: about $(( (est + 59) / 60 )) min ($ROUNDS rounds, workloads $ONLY; excluding the build)"
  setup
  machine_info
  log "raw results in $RAW"
  ceilings 0
  local round mode broker order
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate who goes first, so neither broker always meets the warmer page cache or the emptier disk.
    if (( round % 2 == 1 )); then order=(freshet kafka); else order=(kafka freshet); fi
    for mode in "${MODES[@]}"; do
      for broker in "${order[@]}"; do one_broker "$round" "$broker" "$mode"; done
    done
    if wants partitions10k; then
      for broker in "${order[@]}"; do partitions10k "$round" "$broker"; done
    fi
  done
  ceilings "$(( ROUNDS + 1 ))"
  echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/machine.txt"
  "$PY" "$BENCH/aggregate.py" "$RAW" "$OUT_PATH" "${BENCH_NOTE:-}"
  log "wrote $OUT_PATH.md after $(( (SECONDS - t_start) / 60 )) min $(( (SECONDS - t_start) % 60 )) s (estimated $(( (est + 59) / 60 )) min)"
}

main
