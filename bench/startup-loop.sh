#!/usr/bin/env bash
# Repeated restart timing: launch -> first acknowledged produce, cold page cache for the data dir.
#
#   bench/startup-loop.sh FRESHET_BINARY [RUNS=15] [PORT]
#
# Prepares a data directory once (topic `startup` with 1 partition and 24 topics of 4 partitions,
# 20,000 1 KiB records in three of them, like a bench round's data), so that the restart replays
# metadata and reopens ~100 logs, then RUNS times: evicts the directory's pages from the page cache
# (bench/native.py evict), launches `freshet serve` through bench/native.py first-produce, and
# stops the broker with SIGTERM. Prints every run and the median; also the broker's own
# startup_ms from its ready line.
set -euo pipefail
BIN=$(realpath "$1")
RUNS=${2:-15}
PORT=${3:-$((20000 + RANDOM % 30000))}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$HERE/.venv/bin/python
WORK=$(mktemp -d /tmp/freshet-startup.XXXXXX)
BOOT=127.0.0.1:$PORT
trap 'rm -rf "$WORK"' EXIT

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}
stop() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
}

# First start: create the data.
"$BIN" serve --data-dir "$WORK/data" --listen "$BOOT" >"$WORK/prep.log" 2>&1 &
pid=$!
wait_port
specs=(startup:1)
for t in $(seq 1 24); do specs+=("t$t:4"); done
"$PY" "$HERE/native.py" admin-create --bootstrap "$BOOT" "${specs[@]}" >/dev/null
for t in startup:1 t1:4 t2:4; do
  "$PY" "$HERE/native.py" produce --bootstrap "$BOOT" --topic "${t%%:*}" --partitions "${t##*:}" \
    --records 20000 --size 1024 >/dev/null
done
stop "$pid"

times=()
for i in $(seq 1 "$RUNS"); do
  "$PY" "$HERE/native.py" evict "$WORK/data" >/dev/null
  : >"$WORK/run.log"
  out=$("$PY" "$HERE/native.py" first-produce --bootstrap "$BOOT" --topic startup \
    --launch "exec $BIN serve --data-dir $WORK/data --listen $BOOT" --log "$WORK/run.log")
  ms=$("$PY" -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["startup_to_first_produce_ms"])' <<<"$out")
  bpid=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out")
  ready=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/run.log" | grep -o 'startup_ms=[0-9]*' | head -1 | cut -d= -f2 || true)
  stop "$bpid"
  echo "run $i: first acked produce ${ms} ms (broker ready line startup_ms=${ready:-?})"
  times+=("$ms")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "median %.1f ms over %d runs (min %.1f, max %.1f)\n", m, NR, a[1], a[NR]}'
