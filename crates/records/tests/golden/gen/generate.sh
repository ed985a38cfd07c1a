#!/usr/bin/env bash
# Regenerates the golden RecordBatch files in the parent folder with the Kafka Java client.
# Needs a JDK (17+) and Maven (fetches kafka-clients 4.1.0 from Maven Central).
set -euo pipefail
cd "$(dirname "$0")"
lib="${TMPDIR:-/tmp}/freshet-records-golden-lib"
mvn -q -B dependency:copy-dependencies -DoutputDirectory="$lib"
classes="$(mktemp -d)"
javac -d "$classes" -cp "$lib/*" src/main/java/GoldenBatches.java
java -cp "$classes:$lib/*" GoldenBatches ..
rm -rf "$classes"
