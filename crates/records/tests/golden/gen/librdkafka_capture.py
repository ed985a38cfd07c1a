#!/usr/bin/env python3
"""Test-data driver, not product code: captures the RecordBatches that librdkafka (through the
confluent-kafka Python package) writes, one per codec, into ../librdkafka-<codec>.bin.

librdkafka only builds batches when it talks to a broker, so this script runs a tiny fake broker
on 127.0.0.1 that answers just enough of the protocol: ApiVersions (v3), Metadata (v1) and
Produce (v7), each in its non-flexible or hand-encoded form. It advertises Fetch 4..10 and
FindCoordinator 0 without serving them, because librdkafka decides its features from the
advertised ranges: magic-2 batches and zstd need Produce and Fetch, and lz4 is silently
replaced by no compression ("Broker does not support compression type lz4") unless
FindCoordinator is listed.

Usage: python3 librdkafka_capture.py [output-dir]   (needs `pip install confluent-kafka`)
"""

import socket
import struct
import sys
import threading
from pathlib import Path

from confluent_kafka import Producer

TOPIC = "golden"
BASE_TIMESTAMP_MS = 1_700_000_000_000
BIG_VALUE = bytes(((i % 251) ^ (i // 1000)) & 0xFF for i in range(150_000))
# The same five records as GoldenBatches.expectedRecords() (Java) and golden_records() (Rust).
RECORDS = [
    (BASE_TIMESTAMP_MS, b"key-0", b"value-0",
     [("dup", b"first"), ("dup", b"second"), ("null-value", None), ("empty", b"")]),
    (BASE_TIMESTAMP_MS + 50, None, b"value with a null key", []),
    (BASE_TIMESTAMP_MS + 20, b"tombstone", None, [("ünïcödé", "✓".encode())]),
    (BASE_TIMESTAMP_MS + 30, b"big", BIG_VALUE, []),
    (BASE_TIMESTAMP_MS - 10, b"", b"", []),
]

API_PRODUCE, API_FETCH, API_METADATA, API_FIND_COORDINATOR, API_VERSIONS = 0, 1, 3, 10, 18
ADVERTISED = [
    (API_PRODUCE, 0, 7),
    (API_FETCH, 4, 10),
    (API_METADATA, 1, 1),
    (API_FIND_COORDINATOR, 0, 0),
    (API_VERSIONS, 0, 3),
]


def string(s):
    data = s.encode()
    return struct.pack(">h", len(data)) + data


def read_string(buf, pos):
    (length,) = struct.unpack_from(">h", buf, pos)
    pos += 2
    if length < 0:
        return None, pos
    return buf[pos:pos + length].decode(), pos + length


def api_versions_v3():
    # Response header v0 (always, for ApiVersions), flexible body: compact array + tags.
    body = struct.pack(">h", 0) + bytes([len(ADVERTISED) + 1])
    for key, low, high in ADVERTISED:
        body += struct.pack(">hhh", key, low, high) + b"\x00"
    return body + struct.pack(">i", 0) + b"\x00"


def metadata_v1(port):
    body = struct.pack(">i", 1) + struct.pack(">i", 1) + string("127.0.0.1")
    body += struct.pack(">i", port) + struct.pack(">h", -1)  # rack: null
    body += struct.pack(">i", 1)  # controller id
    body += struct.pack(">i", 1) + struct.pack(">h", 0) + string(TOPIC) + b"\x00"
    body += struct.pack(">i", 1) + struct.pack(">hii", 0, 0, 1)
    body += struct.pack(">ii", 1, 1) + struct.pack(">ii", 1, 1)
    return body


def produce_v7(request, pos, captured):
    _, pos = read_string(request, pos)  # transactional id
    _acks, _timeout = struct.unpack_from(">hi", request, pos)
    pos += 6
    (topics,) = struct.unpack_from(">i", request, pos)
    pos += 4
    response = struct.pack(">i", topics)
    for _ in range(topics):
        name, pos = read_string(request, pos)
        (partitions,) = struct.unpack_from(">i", request, pos)
        pos += 4
        response += string(name) + struct.pack(">i", partitions)
        for _ in range(partitions):
            index, size = struct.unpack_from(">ii", request, pos)
            pos += 8
            captured.append(request[pos:pos + size])
            pos += size
            response += struct.pack(">ihqqq", index, 0, 0, -1, 0)
    return response + struct.pack(">i", 0)


def serve(listener, captured):
    port = listener.getsockname()[1]
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn, port, captured), daemon=True).start()


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def handle(conn, port, captured):
    try:
        while True:
            (size,) = struct.unpack(">i", read_exact(conn, 4))
            request = read_exact(conn, size)
            key, version, correlation = struct.unpack_from(">hhi", request, 0)
            _, pos = read_string(request, 8)
            if key == API_VERSIONS:
                body = api_versions_v3() if version == 3 else None
            elif key == API_METADATA and version == 1:
                body = metadata_v1(port)
            elif key == API_PRODUCE and version == 7:
                body = produce_v7(request, pos, captured)
            else:
                body = None
            if body is None:
                print(f"fake broker: unexpected api {key} v{version}", file=sys.stderr)
                return
            frame = struct.pack(">i", correlation) + body
            conn.sendall(struct.pack(">i", len(frame)) + frame)
    except EOFError:
        pass
    finally:
        conn.close()


def capture(port, codec, captured):
    captured.clear()
    producer = Producer({
        "bootstrap.servers": f"127.0.0.1:{port}",
        "compression.type": codec,
        "linger.ms": 200,
        "enable.idempotence": False,
    })
    for timestamp, key, value, headers in RECORDS:
        producer.produce(TOPIC, key=key, value=value, headers=headers, timestamp=timestamp,
                         partition=0)
    remaining = producer.flush(20)
    if remaining or len(captured) != 1:
        raise SystemExit(f"{codec}: {remaining} undelivered, {len(captured)} batches captured")
    return captured[0]


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    listener = socket.create_server(("127.0.0.1", 0))
    captured = []
    threading.Thread(target=serve, args=(listener, captured), daemon=True).start()
    port = listener.getsockname()[1]
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        batch = capture(port, codec, captured)
        attributes = struct.unpack_from(">h", batch, 21)[0]
        if codec != "none" and attributes & 7 == 0:
            raise SystemExit(f"{codec}: librdkafka sent the batch uncompressed")
        path = out / f"librdkafka-{codec}.bin"
        path.write_bytes(batch)
        print(f"wrote {path.name} ({len(batch)} bytes)")


if __name__ == "__main__":
    main()
