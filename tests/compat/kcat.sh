#!/usr/bin/env bash
# kcat (librdkafka, from Debian) against any broker.
#
#   tests/compat/kcat.sh TOPIC        (bootstrap from $BOOTSTRAP, default 127.0.0.1:9092)
#
# Produces 2 records per codec (none, gzip, snappy, lz4, zstd) with -K: keys and -H headers
# (a duplicate key and an empty value) to a topic that does not exist yet, so that it is
# auto-created, then consumes with a -f format printing offset, timestamp, key, value and headers:
# from the beginning, from an offset, from a timestamp (-o s@MS) and from the end.
set -euo pipefail
B=${BOOTSTRAP:-127.0.0.1:9092}
[[ $# -eq 1 ]] || { echo "usage: $0 TOPIC" >&2; exit 2; }
topic=$1
codecs=(none gzip snappy lz4 zstd)
fmt='%o\t%T\t%k\t%s\t%h\n'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "kcat: MISMATCH: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
consume() { kcat -b "$B" -t "$topic" -C -p 0 -q -f "$fmt" -X check.crcs=true "$@" 2>"$work/err" >"$work/out" || { cat "$work/err" >&2; fail "kcat -C $* exited non-zero"; }; }

t_before=$(now_ms)
for i in "${!codecs[@]}"; do
  c=${codecs[$i]}
  printf 'key-%s-a:value %s a é✓\nkey-%s-b:value:%s:b\n' "$c" "$c" "$c" "$c" |
    kcat -b "$B" -t "$topic" -P -p 0 -K: -z "$c" -X acks=all -X enable.idempotence=true \
      -H "h-index=$i" -H dup=first -H dup=second -H empty= 2>"$work/err" ||
    { cat "$work/err" >&2; fail "kcat -P -z $c exited non-zero"; }
done
t_after=$(now_ms)

# Checks one printed line against the record expected at its offset.
check_line() {
  local off=$1 ts=$2 key=$3 value=$4 headers=$5 want=$6
  local c=${codecs[$((want / 2))]} ab; ab=$([[ $((want % 2)) == 0 ]] && echo a || echo b)
  [[ $off == "$want" ]] || fail "offset $off, expected $want"
  [[ $key == "key-$c-$ab" ]] || fail "offset $off: key '$key', expected 'key-$c-$ab'"
  local value_want; value_want=$([[ $ab == a ]] && echo "value $c a é✓" || echo "value:$c:b")
  [[ $value == "$value_want" ]] || fail "offset $off: value '$value', expected '$value_want'"
  [[ $headers == "h-index=$((want / 2)),dup=first,dup=second,empty=" ]] || fail "offset $off: headers '$headers'"
  (( ts >= t_before - 1000 && ts <= t_after + 1000 )) || fail "offset $off: timestamp $ts outside [$t_before, $t_after]"
}

check_output() {
  local want=$1 count=$2 n=0 off ts key value headers
  while IFS=$'\t' read -r off ts key value headers; do
    check_line "$off" "$ts" "$key" "$value" "$headers" $((want + n))
    n=$((n + 1))
  done <"$work/out"
  (( n == count )) || fail "expected $count records from offset $want, got $n: $(head -c 300 "$work/out")"
}

consume -o beginning -e
check_output 0 10
cp "$work/out" "$work/all"

consume -o 5 -c 1
check_output 5 1

# The first record of a later kcat run has a strictly later timestamp than everything before it.
ts6=$(awk -F'\t' '$1 == 6 { print $2 }' "$work/all")
ts5=$(awk -F'\t' '$1 == 5 { print $2 }' "$work/all")
(( ts6 > ts5 )) || fail "timestamps of offsets 5 and 6 are not increasing: $ts5 $ts6"
consume -o "s@$ts6" -c 1
check_output 6 1

consume -o end -e
[[ ! -s $work/out ]] || fail "records after -o end: $(head -c 200 "$work/out")"

kcat -b "$B" -L -t "$topic" -J >"$work/meta" 2>"$work/err" || { cat "$work/err" >&2; fail "kcat -L failed"; }
python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
t = [t for t in m["topics"] if t["topic"] == sys.argv[2]]
assert len(t) == 1 and len(t[0]["partitions"]) == 1 and t[0]["partitions"][0]["leader"] >= 0, m
' "$work/meta" "$topic" || fail "kcat -L metadata for $topic: $(cat "$work/meta")"

echo "kcat: auto-created topic, 5 codecs, keys, headers (duplicate, empty), timestamps, offsets, -o s@ts, -L OK"
echo "kcat: OK"
