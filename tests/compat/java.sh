#!/usr/bin/env bash
# Java client driver: builds tests/compat/java (once) and runs it.
#   tests/compat/java.sh [--groups] TOPIC      (bootstrap from $BOOTSTRAP, default 127.0.0.1:9092)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jar=$here/java/target/compat-java-1.jar
if [[ ! -f $jar || -n $(find "$here/java/src" "$here/java/pom.xml" -newer "$jar" 2>/dev/null) ]]; then
  mkdir -p "$here/java/target"
  mvn -q -B -f "$here/java/pom.xml" package >"$here/java/target/build.log" 2>&1 \
    || { cat "$here/java/target/build.log" >&2; exit 1; }
fi
exec java -Xmx512m -cp "$jar:$here/java/target/lib/*" dev.freshet.compat.Compat \
  --bootstrap "${BOOTSTRAP:-127.0.0.1:9092}" "$@"
