#!/usr/bin/env bash
# Cross-check our encodings with Kafka's own Java classes (kafka-clients from Maven Central).
# Usage: crates/protocol/tests/java-oracle/run.sh [kafka-clients version, default 4.3.1]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../../../.."
version="${1:-4.3.1}"
jar="$HOME/.m2/repository/org/apache/kafka/kafka-clients/$version/kafka-clients-$version.jar"
[ -f "$jar" ] || mvn -B -q dependency:get -Dartifact="org.apache.kafka:kafka-clients:$version"
# MemoryRecords (records fields) logs through slf4j, which must be on the class path.
slf4j="$HOME/.m2/repository/org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar"
[ -f "$slf4j" ] || mvn -B -q dependency:get -Dartifact="org.slf4j:slf4j-api:1.7.36"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && FRESHET_ORACLE_SAMPLES="$work/samples.bin" \
    cargo test -q -p freshet-protocol --lib -- --ignored write_java_oracle_samples >/dev/null)
javac -d "$work" -cp "$jar:$slf4j" "$here/JavaOracle.java"
java -cp "$jar:$slf4j:$work" JavaOracle "$work/samples.bin"
