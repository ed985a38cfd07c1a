#!/usr/bin/env bash
# Interop check in the other direction: freshet-records builds the golden records with every
# codec, and Kafka's Java client (kafka-clients 4.1.0) validates and decodes them.
# Needs a JDK (17+) and Maven. Not part of `cargo test` (it needs the JVM).
set -euo pipefail
cd "$(dirname "$0")"
lib="${TMPDIR:-/tmp}/freshet-records-golden-lib"
out="$(mktemp -d)"
mvn -q -B dependency:copy-dependencies -DoutputDirectory="$lib"
FRESHET_RECORDS_OUT="$out" cargo test -q -p freshet-records --test golden -- --ignored write_batches_for_java
classes="$(mktemp -d)"
javac -d "$classes" -cp "$lib/*" src/main/java/GoldenBatches.java src/main/java/VerifyOurs.java
java -cp "$classes:$lib/*" VerifyOurs "$out"/*.bin
rm -rf "$classes" "$out"
