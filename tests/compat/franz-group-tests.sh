#!/usr/bin/env bash
# franz-go's OWN consumer-group tests (package pkg/kgo of the franz-go version tests/compat/go
# pins) run against a live broker: TestGroupETL chains three levels of consumer groups
# (consume, re-produce, consume again) over 500,000 records while members join, quit with and
# without committing, and rebalance, once per balancer: range, cooperative-sticky (classic
# JoinGroup/SyncGroup), range/848 and sticky/848 (KIP-848 ConsumerGroupHeartbeat), and the
# static-membership (KIP-345) variants cooperative-sticky/static and sticky/848/static; every
# record must arrive exactly once at every level, in order per partition.
#
#   tests/compat/franz-group-tests.sh BOOTSTRAP [--tests A,B,...] [--records N] [--rf N]
#                                     [--timeout DUR] [--allow-skips]
#   tests/compat/franz-group-tests.sh --kafka [...]   start Apache Kafka 4.3.1 (tools/kafka.sh) on
#                                                     a free port, run against it, stop it
#
# --tests     test functions to run (default: all of kgo's group tests that need only a broker:
#             TestGroupETL,TestGroupSimple,TestIssue523,Test848RegexBrokerResolves); franz-go's
#             TestClient_Produce always runs first (see "warmup" below).
#             Not offered: TestTxnEtl (transactions), TestShareGroup* (share groups), SCRAM tests.
# --records   records TestGroupETL produces (franz-go's KGO_TEST_RECORDS; default its 500000)
# --rf        replication factor of the topics the tests create (KGO_TEST_RF; default 1, one node)
# --timeout   go test -timeout (default 15m)
# --allow-skips  a skipped sub-test (broker without KIP-848 or static membership) is not a failure
#
# Start the broker with group.initial.rebalance.delay.ms=0 (Freshet:
# FRESHET_GROUP_INITIAL_REBALANCE_DELAY_MS=0); otherwise every new group waits 3 s first.
# The test binary is built with `go test -c` from the module cache (the Go module zip carries
# franz-go's _test.go files). The full -v output goes to $COMPAT_LOG_DIR (default a new
# /tmp/freshet-franz-groups.*); stdout gets the per-test result lines, the error lines of a
# failure, and one summary line. Exits 1 if any test failed, was skipped (see --allow-skips), or
# passed without checking its records (franz-go's "skipping validation" after a commit refused
# with STALE_MEMBER_EPOCH), 2 on a usage error.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { echo "franz-group-tests: $*"; }
usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; }

bootstrap="" start_kafka=false allow_skips=false
tests=TestGroupETL,TestGroupSimple,TestIssue523,Test848RegexBrokerResolves
records="" rf=1 timeout=15m
while [[ $# -gt 0 ]]; do
  case $1 in
    --kafka) start_kafka=true ;;
    --tests) tests=${2:?--tests needs a value}; shift ;;
    --records) records=${2:?--records needs a value}; shift ;;
    --rf) rf=${2:?--rf needs a value}; shift ;;
    --timeout) timeout=${2:?--timeout needs a value}; shift ;;
    --allow-skips) allow_skips=true ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "franz-group-tests: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) bootstrap=$1 ;;
  esac
  shift
done
if [[ -z $bootstrap ]] && ! $start_kafka; then
  echo "franz-group-tests: give BOOTSTRAP (host:port) or --kafka (see --help)" >&2
  exit 2
fi
[[ $tests =~ ^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$ ]] \
  || { echo "franz-group-tests: --tests takes test function names separated by commas" >&2; exit 2; }

logs=${COMPAT_LOG_DIR:-$(mktemp -d /tmp/freshet-franz-groups.XXXXXX)}
mkdir -p "$logs"
fail() { say "$*"; say "0 passed, 1 failed"; exit 1; }

# The franz-go version tests/compat/go pins.
version=$(awk '$1 == "github.com/twmb/franz-go" { print $2 }' "$here/go/go.mod")
[[ -n $version ]] || fail "no github.com/twmb/franz-go in $here/go/go.mod"

# Build kgo's test binary from the module the compat Go module requires (downloads it if needed).
bin=$here/go/bin/kgo-$version.test
t0=$(date +%s)
if ! (cd "$here/go" && go mod download github.com/twmb/franz-go \
      && go test -c -o "$bin" github.com/twmb/franz-go/pkg/kgo) >"$logs/build.log" 2>&1; then
  cat "$logs/build.log"
  fail "could not build franz-go $version's kgo tests (log $logs/build.log)"
fi
say "built kgo tests of franz-go $version in $(( $(date +%s) - t0 )) s"

kafka_dir=""
stop_kafka() {
  [[ -n $kafka_dir && -f $kafka_dir/pid ]] || return 0
  "$root/tools/kafka.sh" stop "$kafka_dir" >/dev/null 2>&1
  rm -rf "$kafka_dir/data"  # about 150 MB of test topics; server.log stays
}
if $start_kafka; then
  "$root/tools/kafka.sh" fetch >"$logs/kafka-fetch.log" 2>&1 \
    || fail "could not fetch Apache Kafka (log $logs/kafka-fetch.log)"
  kafka_dir=$logs/kafka
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  # The controller listens on port+1: pick again if that one is taken.
  while (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; do port=$((port + 2)); done
  trap stop_kafka EXIT
  "$root/tools/kafka.sh" start "$kafka_dir" "$port" group.initial.rebalance.delay.ms=0 \
    || fail "could not start Apache Kafka"
  bootstrap=127.0.0.1:$port
fi

host=${bootstrap%:*} port=${bootstrap##*:}
timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null || fail "cannot connect to $bootstrap"

# franz-go decides whether the KIP-848 and static-membership sub-tests run from the ApiVersions
# its shared admin client reads the first time a test uses it; TestGroupSimple checks before it
# uses it, so run alone it skips its 848 sub-test (against Kafka too). TestClient_Produce (2 s:
# 20,000 records from 50 goroutines to one partition) is the one quick broker test that is not
# parallel: it runs before every parallel test and sets that client up first.
warmup=TestClient_Produce
[[ ,$tests, == *,$warmup,* ]] || tests=$warmup,$tests
pattern="^(${tests//,/|})\$"
out=$logs/kgo-tests.log
say "running $tests of franz-go $version against $bootstrap (log $out)"
t0=$(date +%s)
# Run from the log folder: nothing the tests write lands in the repository.
(cd "$logs" && env KGO_SEEDS="$bootstrap" KGO_TEST_RF="$rf" ${records:+KGO_TEST_RECORDS="$records"} \
  "$bin" -test.run "$pattern" -test.v -test.count=1 -test.timeout "$timeout") >"$out" 2>&1
rc=$?
secs=$(( $(date +%s) - t0 ))

# Results: every `--- PASS|FAIL|SKIP: name (time)` line; a test that has sub-tests (printed
# indented under it) counts through them only. Sub-test names may hold "/" (range/848). franz-go's TestGroupETL sub-tests pass without checking their records when a
# KIP-848 commit was refused with STALE_MEMBER_EPOCH ("skipping validation"): counted apart.
summary=$(awk -v allow_skips="$allow_skips" -v rc="$rc" '
  match($0, /^ *--- (PASS|FAIL|SKIP): [^ ]+/) {
    line = substr($0, RSTART, RLENGTH)
    d = length(line); sub(/^ */, "", line); d -= length(line)  # sub-tests are indented
    split(line, f, " ")
    st = f[2]; sub(/:$/, "", st); name = f[3]
    if (!(name in status)) order[++n] = name
    status[name] = st; depth[name] = d
  }
  /skipping validation/ { unchecked++ }
  END {
    for (i = 1; i <= n; i++) {
      name = order[i]; parent = 0
      for (j = 1; j <= n; j++)
        if (depth[order[j]] > depth[name] && index(order[j], name "/") == 1) { parent = 1; break }
      if (parent) continue
      if (status[name] == "PASS") { pass++; passed = passed " " name }
      else if (status[name] == "FAIL") { failn++; failed = failed " " name }
      else { skip++; skipped = skipped " " name }
    }
    bad = failn + (allow_skips == "true" ? 0 : skip) + unchecked
    if (n == 0 || (rc != 0 && bad == 0)) bad = 1  # crashed, timed out or ran nothing
    printf "%d passed, %d failed", pass + 0, bad
    if (skip) printf ", %d skipped", skip
    printf "\037%d\037%s\037%s\037%s\037%d\n", unchecked + 0, passed, failed, skipped, bad
  }' "$out")
IFS=$'\037' read -r counts unchecked passed failed skipped bad <<<"$summary"

grep -E '^ *--- (PASS|FAIL|SKIP):' "$out"
if [[ $bad != 0 ]]; then
  say "error lines (full output in $out):"
  grep -E 'sendErr|_test\.go:[0-9]+: |^panic:|test timed out|^FAIL' "$out" \
    | grep -vE 'deleting (group|topic)|completed in' | head -30
  [[ -n $failed ]] && say "failed:$failed"
  [[ -n $skipped ]] && ! $allow_skips && say "skipped (a failure without --allow-skips):$skipped"
  [[ $unchecked != 0 ]] && say "$unchecked sub-test(s) passed without checking their records (skipping validation)"
fi
say "franz-go $version kgo group tests against $bootstrap in $secs s:$passed"
echo "franz-group-tests: $counts"
[[ $bad == 0 ]]
