#!/usr/bin/env bash
# Consumer groups under churn with real clients (see group-churn.py for what is checked).
#
#   tests/compat/group-churn.sh [BOOTSTRAP] [--variants A,B,...] [--members 1,2,4,6]
#                               [--records M] [--delay-ms MS] [--kip848-kill] [--timeout S] [--logs DIR]
#   tests/compat/group-churn.sh --self-test   (checks the checker on made-up member outputs)
#
# Builds what is missing first, as run-all.sh does: the Java member (Maven), the Python venv with
# the pinned clients (pip) and the franz-go member (go build). Start the broker with
# group.initial.rebalance.delay.ms=0 (Freshet: FRESHET_GROUP_INITIAL_REBALANCE_DELAY_MS=0) so
# that joins are not held back 3 s each.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$here/python/.venv
if [[ ! -f $venv/.requirements ]] || ! cmp -s "$venv/.requirements" "$here/python/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/python/requirements.txt"
  cp "$here/python/requirements.txt" "$venv/.requirements"
fi
jar=$here/java/target/compat-java-1.jar
if [[ ! -f $jar || -n $(find "$here/java/src" "$here/java/pom.xml" -newer "$jar" 2>/dev/null) ]]; then
  mkdir -p "$here/java/target"
  mvn -q -B -f "$here/java/pom.xml" package >"$here/java/target/build.log" 2>&1 \
    || { cat "$here/java/target/build.log" >&2; exit 1; }
fi
(cd "$here/go" && go build -o bin/member ./member)
exec "$venv/bin/python" "$here/group-churn.py" "$@"
