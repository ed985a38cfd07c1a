#!/usr/bin/env bash
# Profiles a release Freshet broker under `freshet perf produce` load (see docs/perf.md,
# "Where the time goes"). Usage:
#   profile.sh perf  OUTDIR          # perf record -g per workload, folded stacks + flamegraph SVGs
#   profile.sh callgrind OUTFILE [N] # callgrind of the broker for N x 100 B records, nofsync topic
# Needs: F (release freshet binary, default $CARGO_TARGET_DIR/release/freshet), perf,
# valgrind, inferno-collapse-perf and inferno-flamegraph on PATH.
# The broker runs on core 1 (taskset -c 1), the load generator on core 0.
set -euo pipefail
F=${F:-${CARGO_TARGET_DIR:-target}/release/freshet}
mode=$1; out=$2
port=$(( 20000 + RANDOM % 40000 ))
while ss -ltn | grep -q ":$port "; do port=$(( 20000 + RANDOM % 40000 )); done
data=$(mktemp -d /tmp/freshet-prof.XXXXXX)
bs=127.0.0.1:$port
NOFSYNC="-c flush.messages=9223372036854775807 -c flush.ms=9223372036854775807"
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$data" "$data.log" || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 600); do ss -ltn | grep -q ":$port " && return 0; sleep 0.1; done; return 1; }
load() { # topic size n
  taskset -c 0 "$F" perf produce --topic "$1" --record-size "$2" --num-records "$3" --acks all \
    --partitions 8 --json --report-interval-ms 0 --bootstrap-server "$bs"
}
create() { # topic [configs...]
  local t=$1; shift
  taskset -c 0 "$F" topic create "$t" -p 8 -r 1 "$@" --bootstrap-server "$bs" >/dev/null
}
case $mode in
perf)
  mkdir -p "$out"
  taskset -c 1 "$F" serve --data-dir "$data" --listen "$bs" >"$data.log" 2>&1 & pid=$!
  wait_port
  for spec in ${SPECS:-"nofsync 100 2000000" "nofsync 1024 500000" "fsync 100 1000000" "fsync 1024 200000"}; do
    set -- $spec; mode_=$1; size=$2; n=$3; t=prof-$mode_-$size
    if [ "$mode_" = nofsync ]; then create "$t" $NOFSYNC; else create "$t"; fi
    perf record -F 999 --call-graph dwarf,16384 -p "$pid" -o "$data/perf.data" 2>/dev/null & rec=$!
    sleep 0.5
    load "$t" "$size" "$n" | tee "$out/$mode_-$size.json"
    kill -INT $rec; wait $rec || true
    perf script --no-inline -i "$data/perf.data" 2>/dev/null | inferno-collapse-perf > "$out/$mode_-$size.folded"
    inferno-flamegraph --title "freshet broker, produce $size B x $n, 8 partitions, acks=all, $mode_" \
      < "$out/$mode_-$size.folded" > "$out/$mode_-$size.svg"
  done
  ;;
callgrind)
  n=${3:-200000}
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$F" serve --data-dir "$data" --listen "$bs" >"$data.log" 2>&1 & pid=$!
  wait_port
  create cg $NOFSYNC
  # Warm-up (metadata, first segment) outside the measurement.
  load cg 100 2000 >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  load cg 100 "$n"
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  ;;
esac
