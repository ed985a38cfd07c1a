#!/usr/bin/env bash
# A/B of two Freshet broker binaries under `freshet perf produce`: records/s, p99 latency and
# broker CPU seconds per run, alternating which binary goes first each round, a fresh broker
# and data directory per run, broker pinned to CPU 1 and the generator to CPU 0.
#
#   bench/ab-produce.sh BASE_BINARY NEW_BINARY [ROUNDS]
#
# Environment: AB_ACKS (default all), AB_CONFIGS (space-separated SIZE:RECORDS:PARTITIONS,
# default "100:1000000:1 1024:300000:1 1024:300000:8"), AB_GENERATOR (the freshet binary that
# runs `perf produce`, default NEW_BINARY). The broker keeps its default (fsync before ack).
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
base=$1 new=$2 rounds=${3:-3}
acks=${AB_ACKS:-all}
configs=${AB_CONFIGS:-"100:1000000:1 1024:300000:1 1024:300000:8"}
generator=${AB_GENERATOR:-$new}

run() { # binary label size records partitions
  local bin=$1 label=$2 size=$3 n=$4 parts=$5 dir port pid out cpu
  dir=$(mktemp -d)
  port=$((20000 + RANDOM % 30000))
  taskset -c 1 "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  out=$(taskset -c 0 "$generator" perf produce --bootstrap-server "127.0.0.1:$port" --topic t \
    --num-records "$n" --record-size "$size" --acks "$acks" --partitions "$parts" --json \
    --report-interval-ms 0 2>/dev/null)
  cpu=$(awk '{print ($14+$15)/100}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(f\"$label size=$size partitions=$parts records/s={round(d['records_per_sec'])} p99_ms={d['latency_ms']['p99']} broker_cpu_s=$cpu\")" "$out"
}

for round in $(seq 1 "$rounds"); do
  for config in $configs; do
    IFS=: read -r size n parts <<<"$config"
    if (( round % 2 )); then run "$base" base "$size" "$n" "$parts"; run "$new" new "$size" "$n" "$parts"
    else run "$new" new "$size" "$n" "$parts"; run "$base" base "$size" "$n" "$parts"; fi
  done
done
