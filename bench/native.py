#!/usr/bin/env python3
"""Native (librdkafka, via confluent-kafka) load pieces for bench/run.sh.

Every sub-command prints one JSON object on stdout; bench/run.sh stores it as is.

  admin-create  create topics (name:partitions[:nofsync]) and wait until they exist
  consume       read N records from every partition by assign() (no consumer group)
  e2e           produce at a fixed rate and time each record until a consumer sees it
  first-produce time from "now" (the broker was just launched) to the first acknowledged record
  tcp-ceiling   copy bytes over a loopback TCP socket, MB/s
  evict         drop a directory's files from the page cache (for cold-cache reads, without root)

bench/run.sh runs these next to Kafka's own ConsumerPerformance and EndToEndLatency (both need a
group coordinator, which Freshet has): `consume` reads by assign() with no group join, so its
figure holds no rebalance, and `e2e` sends at a fixed rate, while EndToEndLatency sends one
record at a time and waits for it (a round trip with nothing queued).
"""
import argparse
import json
import socket
import statistics
import struct
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# Kafka's defaults for flush.messages and flush.ms: never fsync, leave it to the page cache.
NO_FSYNC = {"flush.messages": str(2**63 - 1), "flush.ms": str(2**63 - 1)}


def emit(obj):
    print(json.dumps(obj), flush=True)


def admin_create(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topics = []
    for spec in args.topics:
        parts = spec.split(":")
        config = NO_FSYNC if len(parts) > 2 and parts[2] == "nofsync" else {}
        topics.append(NewTopic(parts[0], num_partitions=int(parts[1]), replication_factor=1, config=config))
    futures = admin.create_topics(topics, operation_timeout=30)
    for name, fut in futures.items():
        fut.result(timeout=60)
    deadline = time.time() + 30
    wanted = {t.topic for t in topics}
    while time.time() < deadline:
        md = admin.list_topics(timeout=10)
        ready = {n for n, t in md.topics.items() if t.error is None and t.partitions}
        if wanted <= ready:
            emit({"created": sorted(wanted)})
            return
        time.sleep(0.05)
    sys.exit(f"topics not visible after 30 s: {sorted(wanted - ready)}")


def produce(args):
    """As fast as librdkafka goes: N records of args.size random-ish bytes, round-robin over the
    partitions (explicit partition, so no partitioner cost in Python), timed until the last ack."""
    import os

    p = Producer({"bootstrap.servers": args.bootstrap, "acks": args.acks, "compression.type": args.compression,
                  "linger.ms": 5, "batch.size": 1048576, "queue.buffering.max.messages": 1000000,
                  "queue.buffering.max.kbytes": 1048576, "enable.idempotence": False, "log_level": 2})
    # A payload that compresses like ProducerPerformance's (random letters), built once.
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    raw = os.urandom(args.size)
    payload = bytes(alphabet[b % 26] for b in raw)
    failed = [0]

    def on_delivery(err, _msg):
        if err is not None:
            failed[0] += 1

    t0 = time.perf_counter()
    for i in range(args.records):
        while True:
            try:
                p.produce(args.topic, payload, partition=i % args.partitions, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(120)
    secs = time.perf_counter() - t0
    if failed[0]:
        sys.exit(f"produce: {failed[0]} records failed")
    emit({"records": args.records, "secs": secs, "records_per_s": args.records / secs,
          "mb_per_s": args.records * args.size / secs / 1e6})


def consumer_conf(bootstrap, **extra):
    # confluent-kafka insists on a group.id even for assign(); nothing is committed or joined.
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "bench-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.max.bytes": 52428800,
        "max.partition.fetch.bytes": 1048576,
        "queued.min.messages": 200000,
        # With its default of 1000 ms, a consumer whose local queue is full (the broker
        # delivers faster than this Python loop drains) stops fetching for up to a second, and
        # the figure measures those pauses: the faster broker fills the queue sooner and pays
        # more of them (seen: 33-36 MB/s on Freshet against 55-58 on Kafka for 100 B records
        # with the default, 70-75 on both with 10 ms).
        "fetch.queue.backoff.ms": 10,
    }
    conf.update(extra)
    return conf


def consume(args):
    c = Consumer(consumer_conf(args.bootstrap))
    c.assign([TopicPartition(args.topic, p, 0) for p in range(args.partitions)])
    records = bytes_total = 0
    t_first = None
    deadline = time.time() + args.timeout_s
    while records < args.records:
        if time.time() > deadline:
            sys.exit(f"consume: only {records}/{args.records} records after {args.timeout_s} s")
        batch = c.consume(num_messages=10000, timeout=1.0)
        for m in batch:
            if m.error():
                raise KafkaException(m.error())
            if t_first is None:
                t_first = time.perf_counter()
            records += 1
            bytes_total += len(m.value() or b"")
    t_end = time.perf_counter()
    c.close()
    secs = max(t_end - (t_first or t_end), 1e-9)
    emit({"records": records, "bytes": bytes_total, "secs": secs,
          "records_per_s": records / secs, "mb_per_s": bytes_total / secs / 1e6})


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def e2e(args):
    """Fixed-rate producer; the consumer (another thread, librdkafka releases the GIL) stamps
    arrival. Latency = arrival - send time carried in the first 8 bytes of the value."""
    total = int(args.rate * args.seconds)
    lat_us = []
    ready = threading.Event()
    done = threading.Event()

    def consumer_loop():
        c = Consumer(consumer_conf(args.bootstrap, **{"fetch.wait.max.ms": args.fetch_wait_ms, "fetch.min.bytes": 1}))
        c.assign([TopicPartition(args.topic, 0, 0)])
        ready.set()
        got = 0
        deadline = None
        while got < total:
            # One record per call: consume(num_messages=N) would hold records back until N arrive
            # or its time-out passes, and that wait would be counted as broker latency.
            m = c.poll(0.05)
            if m is not None and not m.error():
                now_ns = time.monotonic_ns()
                (sent_ns,) = struct.unpack_from(">q", m.value(), 0)
                lat_us.append((now_ns - sent_ns) / 1000.0)
                got += 1
            if done.is_set():
                deadline = deadline or time.time() + 10
                if time.time() > deadline:
                    break
        c.close()

    t = threading.Thread(target=consumer_loop)
    t.start()
    ready.wait()
    time.sleep(1.0)  # let the consumer fetch its (empty) start before the first record
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": args.acks, "linger.ms": 0,
                  "enable.idempotence": False})
    pad = b"x" * max(0, args.size - 8)
    interval_ns = 1_000_000_000 / args.rate
    start_ns = time.monotonic_ns()
    for i in range(total):
        due = start_ns + int(i * interval_ns)
        while True:
            now = time.monotonic_ns()
            if now >= due:
                break
            if due - now > 200_000:
                time.sleep((due - now) / 1e9 / 2)
        p.produce(args.topic, struct.pack(">q", time.monotonic_ns()) + pad, partition=0)
        if i % 64 == 0:
            p.poll(0)
    p.flush(30)
    sent_secs = (time.monotonic_ns() - start_ns) / 1e9
    done.set()
    t.join()
    lat_us.sort()
    emit({"records": total, "received": len(lat_us), "achieved_rate": total / sent_secs,
          "p50_ms": percentile(lat_us, 0.5) / 1000, "p99_ms": percentile(lat_us, 0.99) / 1000,
          "p999_ms": percentile(lat_us, 0.999) / 1000, "max_ms": (lat_us[-1] / 1000 if lat_us else float("nan")),
          "curve": [[q, percentile(lat_us, q) / 1000] for q in
                    (0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0)]})


def first_produce(args):
    """Launches the broker (args.launch, a shell command) once the client is ready, so that the
    figure holds no Python or librdkafka start-up, and times it to the first acknowledged record."""
    import subprocess

    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 0,
                  "reconnect.backoff.ms": 5, "reconnect.backoff.max.ms": 20,
                  "retry.backoff.ms": 5, "retry.backoff.max.ms": 20,
                  "topic.metadata.refresh.fast.interval.ms": 10,
                  "socket.connection.setup.timeout.ms": 1000, "log_level": 2, "message.timeout.ms": args.timeout_s * 1000})
    result = {}

    def on_delivery(err, msg):
        result["err"] = err
        result["t_ns"] = time.time_ns()

    with open(args.log, "ab") as log:
        t0_ns = time.time_ns()
        proc = subprocess.Popen(["bash", "-c", args.launch], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    p.produce(args.topic, b"first", partition=0, on_delivery=on_delivery)
    while "err" not in result:
        p.poll(0.001)
    if result["err"] is not None:
        sys.exit(f"first-produce failed: {result['err']}")
    emit({"startup_to_first_produce_ms": (result["t_ns"] - t0_ns) / 1e6, "pid": proc.pid})


def tcp_ceiling(args):
    total = args.mib * 1024 * 1024
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    received = [0]

    def sink():
        conn, _ = srv.accept()
        buf = bytearray(1 << 20)
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                break
            received[0] += n
        conn.close()

    t = threading.Thread(target=sink)
    t.start()
    out = socket.create_connection(("127.0.0.1", port))
    chunk = b"\0" * (1 << 20)
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        out.sendall(chunk)
        sent += len(chunk)
    out.shutdown(socket.SHUT_WR)
    t.join()
    secs = time.perf_counter() - t0
    out.close()
    srv.close()
    emit({"bytes": received[0], "secs": secs, "mb_per_s": received[0] / secs / 1e6})


def many_partitions(args):
    """Creates one topic with args.partitions partitions, times it until the metadata shows every
    partition with a leader, then times Metadata requests for that topic.

    Kafka's KRaft controller refuses an operation of more than 10,000 records ("Unable to perform
    excessively large batch operation": a topic record plus one per partition), so the topic is
    created with args.step partitions and grown by CreatePartitions in steps of args.step, the
    same requests for both brokers."""
    from confluent_kafka.admin import NewPartitions

    admin = AdminClient({"bootstrap.servers": args.bootstrap, "log_level": 2})
    t0 = time.perf_counter()
    count = min(args.partitions, args.step)
    admin.create_topics([NewTopic(args.topic, num_partitions=count, replication_factor=1)],
                        operation_timeout=600)[args.topic].result(timeout=900)
    while count < args.partitions:
        count = min(args.partitions, count + args.step)
        admin.create_partitions([NewPartitions(args.topic, count)],
                                operation_timeout=600)[args.topic].result(timeout=900)
    deadline = time.time() + 900
    while True:
        t = admin.list_topics(topic=args.topic, timeout=60).topics.get(args.topic)
        if t is not None and t.error is None and len(t.partitions) == args.partitions and all(
                p.leader >= 0 for p in t.partitions.values()):
            break
        if time.time() > deadline:
            sys.exit("many-partitions: topic not complete after 900 s")
        time.sleep(0.1)
    create_s = time.perf_counter() - t0
    times = []
    for _ in range(args.metadata_requests):
        t1 = time.perf_counter()
        admin.list_topics(topic=args.topic, timeout=60)
        times.append((time.perf_counter() - t1) * 1000)
    emit({"create_s": create_s, "metadata_ms_median": statistics.median(times), "metadata_ms_max": max(times)})


def evict(args):
    """fdatasync then POSIX_FADV_DONTNEED every file: clean, unmapped pages leave the page cache,
    the same effect as drop_caches for these files only (no root, other processes unaffected)."""
    import os

    files = total = 0
    for dirpath, _, names in os.walk(args.dir):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                files += 1
                total += os.fstat(fd).st_size
            finally:
                os.close(fd)
    emit({"files": files, "bytes": total})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("admin-create")
    a.add_argument("--bootstrap", required=True)
    a.add_argument("topics", nargs="+")
    pr = sub.add_parser("produce")
    pr.add_argument("--bootstrap", required=True)
    pr.add_argument("--topic", required=True)
    pr.add_argument("--partitions", type=int, required=True)
    pr.add_argument("--records", type=int, required=True)
    pr.add_argument("--size", type=int, required=True)
    pr.add_argument("--acks", default="all")
    pr.add_argument("--compression", default="none")
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partitions", type=int, required=True)
    c.add_argument("--records", type=int, required=True)
    c.add_argument("--timeout-s", type=int, default=120)
    e = sub.add_parser("e2e")
    e.add_argument("--bootstrap", required=True)
    e.add_argument("--topic", required=True)
    e.add_argument("--rate", type=float, default=20000)
    e.add_argument("--size", type=int, default=1024)
    e.add_argument("--seconds", type=float, default=10)
    e.add_argument("--acks", default="all")
    e.add_argument("--fetch-wait-ms", type=int, default=100,
                   help="consumer fetch.wait.max.ms: the broker should answer as soon as a record arrives")
    f = sub.add_parser("first-produce")
    f.add_argument("--bootstrap", required=True)
    f.add_argument("--topic", required=True)
    f.add_argument("--launch", required=True, help="shell command that starts the broker")
    f.add_argument("--log", required=True, help="file for the launched command's output")
    f.add_argument("--timeout-s", type=int, default=60)
    t = sub.add_parser("tcp-ceiling")
    t.add_argument("--mib", type=int, default=1024)
    m = sub.add_parser("many-partitions")
    m.add_argument("--bootstrap", required=True)
    m.add_argument("--topic", default="many")
    m.add_argument("--partitions", type=int, default=10000)
    m.add_argument("--metadata-requests", type=int, default=9)
    m.add_argument("--step", type=int, default=5000,
                   help="partitions per CreateTopics / CreatePartitions request (Kafka refuses 10,000 at once)")
    v = sub.add_parser("evict")
    v.add_argument("dir")
    args = ap.parse_args()
    {"admin-create": admin_create, "produce": produce, "consume": consume, "e2e": e2e,
     "first-produce": first_produce, "tcp-ceiling": tcp_ceiling,
     "evict": evict, "many-partitions": many_partitions}[args.cmd](args)


if __name__ == "__main__":
    main()
