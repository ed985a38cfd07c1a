#!/usr/bin/env bash
# Kafka's own command-line tools (from Maven Central through tools/kafka.sh) against any broker.
#
#   tests/compat/kafka-tools.sh [--groups] TOPIC      (bootstrap from $BOOTSTRAP, default 127.0.0.1:9092)
#
# Default: kafka-topics create/list/describe/alter/delete, console producer (key separator,
# headers with a duplicate key) and console consumer on an assigned partition (--from-beginning
# and from an offset, printing key, timestamp, headers, offset), ProducerPerformance and
# GetOffsetShell. With --groups: console consumer in a consumer group and ConsumerPerformance,
# which always subscribes in a group. Exits 1 with one line naming the first mismatch.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka=$here/../../tools/kafka.sh
B=${BOOTSTRAP:-127.0.0.1:9092}
groups=false
if [[ ${1:-} == --groups ]]; then groups=true; shift; fi
[[ $# -eq 1 ]] || { echo "usage: $0 [--groups] TOPIC" >&2; exit 2; }
topic=$1
perf_records=${PERF_RECORDS:-50000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "kafka-tools: MISMATCH: $*" >&2; exit 1; }
# Short-lived tools start about 40% faster on 2 busy cores with only the C1 JIT and the serial GC
# (measured: kafka-topics --list 4.4-5.6 s -> 2.6-4.0 s). The perf tools keep Kafka's defaults.
k() {
  case $1 in
    producer-perf|consumer-perf) "$kafka" run "$@" ;;
    *) KAFKA_OPTS="${KAFKA_OPTS:-} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC" "$kafka" run "$@" ;;
  esac
}
now_ms() { date +%s%3N; }

# Runs a tool, keeping stdout in $work/out and stderr in $work/err; a failing tool fails the check.
tool() {
  local name=$1; shift
  if ! k "$@" >"$work/out" 2>"$work/err"; then
    tail -n 20 "$work/err" >&2
    fail "$name exited non-zero"
  fi
}

check_topics() {
  local t=$topic-admin
  tool "kafka-topics --create" topics --bootstrap-server "$B" --create --topic "$t" --partitions 2 \
    --replication-factor 1 --config retention.ms=3600000
  grep -q "Created topic $t" "$work/out" || fail "kafka-topics --create printed: $(cat "$work/out")"
  tool "kafka-topics --list" topics --bootstrap-server "$B" --list
  grep -qx "$t" "$work/out" || fail "kafka-topics --list lacks $t: $(tr '\n' ' ' <"$work/out")"
  tool "kafka-topics --describe" topics --bootstrap-server "$B" --describe --topic "$t"
  grep -q "PartitionCount: 2" "$work/out" || fail "describe: no 'PartitionCount: 2' in $(head -1 "$work/out")"
  grep -q "retention.ms=3600000" "$work/out" || fail "describe: config retention.ms=3600000 missing: $(head -1 "$work/out")"
  [[ $(grep -c "Leader: 1" "$work/out") == 2 ]] || fail "describe: expected 2 partitions led by node 1: $(cat "$work/out")"
  tool "kafka-topics --alter" topics --bootstrap-server "$B" --alter --topic "$t" --partitions 3
  tool "kafka-topics --describe" topics --bootstrap-server "$B" --describe --topic "$t"
  grep -q "PartitionCount: 3" "$work/out" || fail "after --alter --partitions 3: $(head -1 "$work/out")"
  # kafka-configs (IncrementalAlterConfigs, DescribeConfigs): set one config, remove another.
  tool "kafka-configs --alter" configs --bootstrap-server "$B" --entity-type topics --entity-name "$t" \
    --alter --add-config max.message.bytes=2000000 --delete-config retention.ms
  tool "kafka-configs --describe" configs --bootstrap-server "$B" --entity-type topics --entity-name "$t" --describe
  grep -q "max.message.bytes=2000000" "$work/out" || fail "kafka-configs --describe lacks max.message.bytes=2000000: $(cat "$work/out")"
  ! grep -q "retention.ms=" "$work/out" || fail "kafka-configs --describe still shows retention.ms: $(cat "$work/out")"
  tool "kafka-topics --delete" topics --bootstrap-server "$B" --delete --topic "$t"
  for _ in $(seq 1 50); do
    tool "kafka-topics --list" topics --bootstrap-server "$B" --list
    grep -qx "$t" "$work/out" || { echo "kafka-tools: kafka-topics create/list/describe/alter/delete and kafka-configs OK"; return; }
    sleep 0.2
  done
  fail "topic $t still listed after --delete"
}

# Input lines for the console producer: headers, a tab, then key:value (key.separator=:).
console_input() {
  printf 'h-index:0,dup:first,dup:second\tkey-0:value-0\n'
  printf 'h-index:1,dup:first,dup:second\tkey-1:value:with:colons\n'
  printf 'h-index:2,dup:first,dup:second\tkey-2:value with spaces é✓\n'
}

check_console() {
  tool "kafka-topics --create" topics --bootstrap-server "$B" --create --topic "$topic" --partitions 1 --replication-factor 1
  local t_before t_after
  t_before=$(now_ms)
  console_input | k console-producer --bootstrap-server "$B" --topic "$topic" --command-property acks=all \
    --reader-property parse.key=true --reader-property key.separator=: --reader-property parse.headers=true \
    2>"$work/err" || { cat "$work/err" >&2; fail "console producer exited non-zero"; }
  t_after=$(now_ms)
  local fmt=(--formatter-property print.key=true --formatter-property print.timestamp=true
    --formatter-property print.headers=true --formatter-property print.offset=true)
  tool "console consumer --from-beginning" console-consumer --bootstrap-server "$B" --topic "$topic" --partition 0 \
    --from-beginning --max-messages 3 --timeout-ms 30000 "${fmt[@]}"
  verify_console_lines 0 "$t_before" "$t_after"
  tool "console consumer --offset 2" console-consumer --bootstrap-server "$B" --topic "$topic" --partition 0 \
    --offset 2 --max-messages 1 --timeout-ms 30000 "${fmt[@]}"
  verify_console_lines 2 "$t_before" "$t_after"
  echo "kafka-tools: console producer/consumer round trip OK (keys, headers, duplicate header, timestamps)"
}

# Checks $work/out: lines "CreateTime:MS<TAB>Offset:N<TAB>headers<TAB>key<TAB>value" from offset $1 on.
verify_console_lines() {
  local first=$1 t_before=$2 t_after=$3 i=$1 ts off headers key value
  local values=("value-0" "value:with:colons" "value with spaces é✓")
  while IFS=$'\t' read -r ts off headers key value; do
    [[ $off == "Offset:$i" ]] || fail "line $i: offset field '$off'"
    [[ $headers == "h-index:$i,dup:first,dup:second" ]] || fail "line $i: headers '$headers'"
    [[ $key == "key-$i" ]] || fail "line $i: key '$key'"
    [[ $value == "${values[$i]}" ]] || fail "line $i: value '$value', expected '${values[$i]}'"
    [[ $ts =~ ^CreateTime:([0-9]+)$ ]] || fail "line $i: timestamp field '$ts'"
    (( BASH_REMATCH[1] >= t_before - 1000 && BASH_REMATCH[1] <= t_after + 1000 )) \
      || fail "line $i: timestamp ${BASH_REMATCH[1]} outside [$t_before, $t_after]"
    i=$((i + 1))
  done <"$work/out"
  (( i == 3 )) || fail "console consumer from offset $first printed $((i - first)) records, expected $((3 - first))"
}

check_producer_perf() {
  local t=$topic-perf
  tool "kafka-topics --create" topics --bootstrap-server "$B" --create --topic "$t" --partitions 1 --replication-factor 1
  tool ProducerPerformance producer-perf --topic "$t" --num-records "$perf_records" --record-size 100 \
    --throughput -1 --producer-props bootstrap.servers="$B" acks=all compression.type=lz4 linger.ms=5
  local summary; summary=$(tail -n 1 "$work/out")
  [[ $summary == "$perf_records records sent,"* ]] || fail "ProducerPerformance summary: '$summary'"
  grep -q "Exception" "$work/err" && fail "ProducerPerformance logged an exception: $(grep -m1 Exception "$work/err")"
  tool GetOffsetShell get-offsets --bootstrap-server "$B" --topic "$t"
  [[ $(cat "$work/out") == "$t:0:$perf_records" ]] || fail "GetOffsetShell printed '$(cat "$work/out")', expected '$t:0:$perf_records'"
  echo "kafka-tools: ProducerPerformance: $summary"
}

check_console_group() {
  tool "kafka-topics --create" topics --bootstrap-server "$B" --create --topic "$topic" --partitions 1 --replication-factor 1
  console_input | k console-producer --bootstrap-server "$B" --topic "$topic" \
    --reader-property parse.key=true --reader-property key.separator=: --reader-property parse.headers=true \
    2>"$work/err" || { cat "$work/err" >&2; fail "console producer exited non-zero"; }
  tool "console consumer --group" console-consumer --bootstrap-server "$B" --topic "$topic" --group "$topic-g" \
    --from-beginning --max-messages 3 --timeout-ms 30000 --formatter-property print.key=true
  [[ $(cut -f1 "$work/out" | tr '\n' ' ') == "key-0 key-1 key-2 " ]] || fail "group console consumer printed: $(cat "$work/out")"
  tool "consumer-groups --describe" consumer-groups --bootstrap-server "$B" --describe --group "$topic-g"
  awk -v t="$topic" '$2 == t && $3 == 0 && $4 == 3 { ok = 1 } END { exit !ok }' "$work/out" \
    || fail "kafka-consumer-groups --describe: committed offset 3 not shown: $(cat "$work/out")"
  # Reset: a dry run changes nothing, --execute commits; then list and delete the group.
  tool "consumer-groups --reset-offsets (dry run)" consumer-groups --bootstrap-server "$B" --group "$topic-g" \
    --reset-offsets --topic "$topic" --to-offset 1 --dry-run
  awk -v t="$topic" '$2 == t && $3 == 0 && $4 == 1 { ok = 1 } END { exit !ok }' "$work/out" \
    || fail "kafka-consumer-groups --reset-offsets --dry-run: plan not shown: $(cat "$work/out")"
  tool "consumer-groups --describe" consumer-groups --bootstrap-server "$B" --describe --group "$topic-g"
  awk -v t="$topic" '$2 == t && $3 == 0 && $4 == 3 { ok = 1 } END { exit !ok }' "$work/out" \
    || fail "a dry run changed the committed offset: $(cat "$work/out")"
  tool "consumer-groups --reset-offsets --execute" consumer-groups --bootstrap-server "$B" --group "$topic-g" \
    --reset-offsets --topic "$topic" --to-earliest --execute
  tool "consumer-groups --describe" consumer-groups --bootstrap-server "$B" --describe --group "$topic-g"
  awk -v t="$topic" '$2 == t && $3 == 0 && $4 == 0 { ok = 1 } END { exit !ok }' "$work/out" \
    || fail "kafka-consumer-groups --reset-offsets --to-earliest --execute: offset not 0: $(cat "$work/out")"
  tool "consumer-groups --list" consumer-groups --bootstrap-server "$B" --list
  grep -qx "$topic-g" "$work/out" || fail "kafka-consumer-groups --list lacks $topic-g: $(cat "$work/out")"
  tool "consumer-groups --delete" consumer-groups --bootstrap-server "$B" --delete --group "$topic-g"
  tool "consumer-groups --list" consumer-groups --bootstrap-server "$B" --list
  grep -qx "$topic-g" "$work/out" && fail "group $topic-g still listed after --delete"
  echo "kafka-tools: console consumer in a group and kafka-consumer-groups describe, reset, list, delete OK"
}

check_consumer_perf() {
  local t=$topic-perf
  tool "kafka-topics --create" topics --bootstrap-server "$B" --create --topic "$t" --partitions 1 --replication-factor 1
  tool ProducerPerformance producer-perf --topic "$t" --num-records "$perf_records" --record-size 100 \
    --throughput -1 --producer-props bootstrap.servers="$B" acks=1
  tool ConsumerPerformance consumer-perf --bootstrap-server "$B" --topic "$t" --num-records "$perf_records" \
    --timeout 30000 --group "$t-g"
  # Columns: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, ...
  local consumed; consumed=$(awk -F', ' 'NR == 2 { print $5 }' "$work/out")
  [[ $consumed == "$perf_records" ]] || fail "ConsumerPerformance consumed '$consumed' records: $(cat "$work/out")"
  echo "kafka-tools: ConsumerPerformance: $(sed -n 2p "$work/out")"
}

# Each check runs in its own subshell (where `fail` exits) so one failure does not hide the others.
failed=()
section() {
  local rc
  set +e; ("$@"); rc=$?; set -e
  if [[ $rc != 0 ]]; then echo "kafka-tools: $1: FAILED"; failed+=("$1"); fi
}
if $groups; then
  section check_console_group
  section check_consumer_perf
else
  section check_topics
  section check_console
  section check_producer_perf
fi
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "kafka-tools: MISMATCH: failed: ${failed[*]}" >&2
  exit 1
fi
echo "kafka-tools: OK"
