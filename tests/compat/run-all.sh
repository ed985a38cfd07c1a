#!/usr/bin/env bash
# Runs every real-client compatibility driver against one Kafka-compatible broker.
#
#   tests/compat/run-all.sh [BOOTSTRAP] [--kafka] [--skip-groups] [--only NAME[,NAME...]]
#
#   BOOTSTRAP       host:port of the broker (default $BOOTSTRAP, else 127.0.0.1:9092)
#   --kafka         start Apache Kafka (tools/kafka.sh) on a free port for this run, stop it after
#   --skip-groups   leave out the consumer-group drivers (*-groups)
#   --only LIST     run only these drivers (names as printed, comma-separated)
#
# Installs what is missing first (each step is idempotent and fast when already done): Kafka's
# jars (Maven), the Java driver (Maven), a Python venv with pinned clients (pip), the Go drivers
# (go build), kcat (apt-get) and the rdkafka-crate driver (cargo; its first build compiles
# librdkafka). Each driver gets a fresh topic. Prints one PASS/FAIL line per driver and finally
# `N passed, M failed`; exits 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
kafka=$root/tools/kafka.sh
bootstrap=${BOOTSTRAP:-127.0.0.1:9092}
start_kafka=false skip_groups=false only=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --kafka) start_kafka=true ;;
    --skip-groups) skip_groups=true ;;
    --only) only=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run-all: unknown option $1" >&2; exit 2 ;;
    *) bootstrap=$1 ;;
  esac
  shift
done
logs=${COMPAT_LOG_DIR:-$(mktemp -d /tmp/freshet-compat.XXXXXX)}
mkdir -p "$logs"
now_ms() { date +%s%3N; }
say() { echo "run-all: $*"; }

# ------------------------------------------------------------------------------------------------
# Installs. Each sets install_failed[name] so that its drivers fail with a clear reason.
declare -A install_failed=()

step() {
  local name=$1; shift
  local t0; t0=$(now_ms)
  if "$@" >"$logs/install-$name.log" 2>&1; then
    say "install $name: ok in $(( $(now_ms) - t0 )) ms"
  else
    install_failed[$name]=1
    say "install $name: FAILED (log $logs/install-$name.log)"
    tail -n 15 "$logs/install-$name.log" | sed 's/^/    /'
  fi
}

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

install_kcat() {
  command -v kcat >/dev/null && return
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat
}

install_python() {
  local venv=$here/python/.venv stamp=$here/python/.venv/.requirements
  if [[ -f $stamp ]] && cmp -s "$stamp" "$here/python/requirements.txt"; then return; fi
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/python/requirements.txt" \
    && cp "$here/python/requirements.txt" "$stamp"
}

install_go() { (cd "$here/go" && go build -o bin/franz ./franz && go build -o bin/sarama ./sarama); }
install_java() {
  local jar=$here/java/target/compat-java-1.jar
  if [[ -f $jar && -z $(find "$here/java/src" "$here/java/pom.xml" -newer "$jar") ]]; then return; fi
  mvn -q -B -f "$here/java/pom.xml" package
}
install_kafka() { "$kafka" fetch; }
# The first build compiles librdkafka from source (cmake): minutes; then about a second. The
# target dir is pinned so that a CARGO_TARGET_DIR exported for other work cannot move the binary.
install_rdkafka() {
  CARGO_TARGET_DIR=$here/rdkafka/target cargo build --release --locked --manifest-path "$here/rdkafka/Cargo.toml"
}

t_install=$(now_ms)
step kafka install_kafka
step java install_java
step python install_python
step go install_go
step kcat install_kcat
step rdkafka install_rdkafka
say "installs took $(( $(now_ms) - t_install )) ms"

# ------------------------------------------------------------------------------------------------
# Optional reference broker.
kafka_dir=""
stop_kafka() {
  [[ -n $kafka_dir && -f $kafka_dir/pid ]] || return 0
  local pid; pid=$(cat "$kafka_dir/pid")
  say "Apache Kafka pid $pid: $(grep -E '^Vm(RSS|HWM)' /proc/"$pid"/status 2>/dev/null | tr -s ' \t\n' ' ')"
  "$kafka" stop "$kafka_dir" >/dev/null 2>&1
}
if $start_kafka; then
  kafka_dir=$logs/kafka
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  # The controller listens on port+1: pick again if that one is taken.
  while (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; do port=$((port + 2)); done
  trap stop_kafka EXIT
  "$kafka" start "$kafka_dir" "$port" || { say "could not start Apache Kafka"; echo "0 passed, 1 failed"; exit 1; }
  bootstrap=127.0.0.1:$port
fi
export BOOTSTRAP=$bootstrap
say "bootstrap $BOOTSTRAP, logs in $logs"

# Fail fast when nothing listens: every driver would otherwise spend its own 30-60 s time-out.
host=${bootstrap%:*} port=${bootstrap##*:}
if ! timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  say "cannot connect to $bootstrap"
  echo "0 passed, 1 failed"
  exit 1
fi

# ------------------------------------------------------------------------------------------------
# Drivers: name, the install it needs, and the command (the topic is appended).
py=$here/python/.venv/bin/python
drivers=(
  "java|java|$here/java.sh"
  "kafka-tools|kafka|$here/kafka-tools.sh"
  "kafka-python|python|$py $here/python/kafka_python_compat.py"
  "confluent-kafka|python|$py $here/python/confluent_compat.py"
  "franz-go|go|$here/go/bin/franz"
  "sarama|go|$here/go/bin/sarama"
  "kcat|kcat|$here/kcat.sh"
  "rdkafka|rdkafka|$here/rdkafka/target/release/compat-rdkafka"
  "java-groups|java|$here/java.sh --groups"
  "kafka-tools-groups|kafka|$here/kafka-tools.sh --groups"
  "kafka-python-groups|python|$py $here/python/kafka_python_compat.py --groups"
  "confluent-kafka-groups|python|$py $here/python/confluent_compat.py --groups"
  "franz-go-groups|go|$here/go/bin/franz --groups"
  "sarama-groups|go|$here/go/bin/sarama --groups"
  "java-kip848-groups|java|env COMPAT_GROUP_PROTOCOL=consumer $here/java.sh --groups"
  "confluent-kafka-kip848-groups|python|env COMPAT_GROUP_PROTOCOL=consumer $py $here/python/confluent_compat.py --groups"
)

passed=0 failed=0
run_id=$(date +%s)-$RANDOM
t_run=$(now_ms)
for d in "${drivers[@]}"; do
  IFS='|' read -r name needs cmd <<<"$d"
  [[ $name == *-groups ]] && $skip_groups && continue
  [[ -n $only && ",$only," != *",$name,"* ]] && continue
  if [[ -n ${install_failed[$needs]:-} ]]; then
    echo "FAIL $name (install of $needs failed)"; failed=$((failed + 1)); continue
  fi
  topic=compat-$name-$run_id
  t0=$(now_ms)
  # shellcheck disable=SC2086 # cmd holds a program and its leading arguments
  if timeout 300 $cmd "$topic" >"$logs/$name.log" 2>&1; then
    echo "PASS $name ($(( $(now_ms) - t0 )) ms)"; passed=$((passed + 1))
  else
    echo "FAIL $name ($(( $(now_ms) - t0 )) ms, log $logs/$name.log)"; failed=$((failed + 1))
    grep -E 'FAILED|MISMATCH|ERROR|Exception|error' "$logs/$name.log" | head -n 8 | sed 's/^/    /'
  fi
done
say "drivers took $(( $(now_ms) - t_run )) ms"
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
