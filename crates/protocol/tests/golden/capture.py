#!/usr/bin/env python3
"""Records the first request frames a real Kafka client sends.

Listens on 127.0.0.1:PORT, accepts one connection, saves the body of each request frame
(without the 4-byte size prefix) as OUT_PREFIX-<n>.bin. It answers an ApiVersions request with
an ApiVersions response that advertises every API in the message specs at its full version
range, so that the client goes on to send its next request (Metadata), which is recorded too.
Any other request ends the capture.

Usage: capture.py PORT OUT_PREFIX [MAX_FRAMES]
"""
import glob
import json
import os
import re
import socket
import struct
import sys

SPECS = os.path.join(os.path.dirname(__file__), "../../../../../shared/kafka-message-specs")


def api_ranges():
    """(api_key, min, max) for every request spec."""
    out = []
    for path in glob.glob(os.path.join(SPECS, "*Request.json")):
        text = re.sub(r"^\s*//.*$", "", open(path).read(), flags=re.M)
        spec = json.loads(text)
        lo, _, hi = spec["validVersions"].partition("-")
        out.append((spec["apiKey"], int(lo), int(hi or lo)))
    return sorted(out)


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def api_versions_response(correlation_id, version):
    # Response header v0 (always, for ApiVersions): correlation id only.
    body = struct.pack(">h", 0)  # error code
    apis = api_ranges()
    if version >= 3:
        body += uvarint(len(apis) + 1)
        for key, lo, hi in apis:
            body += struct.pack(">hhh", key, lo, hi) + b"\x00"
        body += struct.pack(">i", 0) + b"\x00"  # throttle time, no tagged fields
    else:
        body += struct.pack(">i", len(apis))
        for key, lo, hi in apis:
            body += struct.pack(">hhh", key, lo, hi)
        if version >= 1:
            body += struct.pack(">i", 0)
    frame = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(frame)) + frame


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def main():
    port, prefix = int(sys.argv[1]), sys.argv[2]
    max_frames = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    server.settimeout(60)
    conn, _ = server.accept()
    conn.settimeout(30)
    for n in range(max_frames):
        try:
            (size,) = struct.unpack(">i", read_exact(conn, 4))
            frame = read_exact(conn, size)
        except (EOFError, socket.timeout):
            break
        with open(f"{prefix}-{n}.bin", "wb") as f:
            f.write(frame)
        key, version, correlation_id = struct.unpack(">hhi", frame[:8])
        print(f"frame {n}: api key {key} v{version} correlation {correlation_id} {size} bytes")
        if key != 18:
            break
        conn.sendall(api_versions_response(correlation_id, version))
    conn.close()


if __name__ == "__main__":
    main()
