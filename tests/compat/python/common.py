"""Shared test data and checks for the Python client drivers.

Every driver produces the same 50 records (10 per codec: none, gzip, snappy, lz4, zstd) to
partition 0 of a fresh topic and reads them back, so a difference between what was sent and
what came back is reported the same way whichever client found it.
"""

import os
import sys
import time

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
RECORDS_PER_CODEC = 10
TIMEOUT_S = 30.0


class Mismatch(Exception):
    """What came back differs from what was sent."""


def parse_args(argv, client):
    """Returns (bootstrap, topic, groups) from `[--groups] [--bootstrap HOST:PORT] TOPIC`."""
    bootstrap = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
    groups, topic, args = False, None, list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--groups":
            groups = True
        elif arg == "--bootstrap":
            bootstrap = args.pop(0)
        else:
            topic = arg
    if topic is None:
        sys.exit(f"usage: {client} [--groups] [--bootstrap HOST:PORT] TOPIC")
    return bootstrap, topic, groups


def base_timestamp_ms():
    # Whole seconds an hour ago: well inside the broker's timestamp acceptance window.
    return (int(time.time()) - 3600) * 1000


def expected_record(i, base_ms):
    """The record at offset i: (key, value, headers, timestamp_ms)."""
    key = None if i % RECORDS_PER_CODEC == 0 else f"key-{i}".encode()
    if i % RECORDS_PER_CODEC == 5:
        value = (f"value-{i}-" + "x" * 20_000).encode()
    else:
        value = f"value-{i}-é✓".encode()
    headers = [
        ("h-index", str(i).encode()),
        ("dup", b"first"),
        ("dup", b"second"),
        ("empty", b""),
    ]
    return key, value, headers, base_ms + i * 1000


def expected_records(base_ms, count=len(CODECS) * RECORDS_PER_CODEC):
    return [expected_record(i, base_ms) for i in range(count)]


def expect(what, want, got):
    if want != got:
        raise Mismatch(f"{what}: expected {show(want)}, got {show(got)}")


def show(v):
    if isinstance(v, (bytes, bytearray)) and len(v) > 60:
        return f"{bytes(v[:60])!r}... ({len(v)} bytes)"
    return repr(v)


def verify(offset, want, key, value, headers, timestamp_ms, create_time):
    """Checks one consumed record (already decoded to plain Python values) against `want`."""
    what = f"record at offset {offset}"
    w_key, w_value, w_headers, w_ts = want
    expect(f"{what} key", w_key, key)
    expect(f"{what} value", w_value, value)
    expect(f"{what} timestamp is CreateTime", True, create_time)
    expect(f"{what} timestamp", w_ts, timestamp_ms)
    expect(f"{what} headers", w_headers, headers)
    expect(f"{what} duplicate header values", [b"first", b"second"], [v for k, v in headers if k == "dup"])


class Sections:
    """Runs independent parts of a check so that one failure does not hide the others."""

    def __init__(self, client):
        self.client = client
        self.failed = []

    def run(self, name, fn):
        try:
            fn()
        except Exception as e:  # every failure is reported, then the next section runs
            print(f"{self.client}: {name}: FAILED: {type(e).__name__}: {e}")
            self.failed.append(name)
            return False
        print(f"{self.client}: {name}: OK")
        return True

    def finish(self):
        if self.failed:
            raise Mismatch("failed: " + "; ".join(self.failed))


def wait_until(what, check):
    deadline = time.monotonic() + TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise Mismatch(f"timed out waiting for {what}")
        time.sleep(0.1)


def main(client, run, run_groups, argv):
    bootstrap, topic, groups = parse_args(argv, client)
    try:
        (run_groups if groups else run)(bootstrap, topic)
    except Mismatch as e:
        print(f"{client}: MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # any client error is a failed check, reported in one line
        print(f"{client}: ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"{client}: OK")
