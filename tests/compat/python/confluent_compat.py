"""Round-trip checks with confluent-kafka (librdkafka bundled in the wheel).

Usage: confluent_compat.py [--groups] [--bootstrap HOST:PORT] TOPIC
"""

import os
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import common
from common import CODECS, RECORDS_PER_CODEC, Mismatch, expect

CLIENT = "confluent-kafka"


def wait_futures(futures):
    for f in futures.values():
        f.result(timeout=common.TIMEOUT_S)


def create_topic(admin, name, partitions, config=None):
    wait_futures(admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]))


def topic_names(admin):
    return set(admin.list_topics(timeout=common.TIMEOUT_S).topics)


def check_admin(admin, topic):
    other = topic + "-admin"
    create_topic(admin, other, 3, {"retention.ms": "3600000"})
    desc = admin.describe_topics(TopicCollection([other]))[other].result(timeout=common.TIMEOUT_S)
    expect(f"partition count of {other}", 3, len(desc.partitions))
    for p in desc.partitions:
        if p.leader is None:
            raise Mismatch(f"partition {p.id} of {other} has no leader")
    resource = ConfigResource("topic", other)
    entries = admin.describe_configs([resource])[resource].result(timeout=common.TIMEOUT_S)
    expect("retention.ms", "3600000", entries["retention.ms"].value)
    expect("retention.ms is not a default", False, entries["retention.ms"].is_default)
    expect("cleanup.policy", "delete", entries["cleanup.policy"].value)
    expect("segment.bytes is a default", True, entries["segment.bytes"].is_default)
    if other not in topic_names(admin):
        raise Mismatch(f"list_topics lacks {other}")
    wait_futures(admin.delete_topics([other]))
    common.wait_until(f"{other} gone from list_topics", lambda: other not in topic_names(admin))


def produce(bootstrap, topic, records, codec, first_offset):
    # librdkafka leaves idempotence off by default; the Java client and kafka-python turn it on.
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": codec,
            "linger.ms": 20,
        }
    )
    reports = {}

    def on_delivery(err, msg, i):
        reports[i] = (err, msg)

    for i, (k, v, h, ts) in enumerate(records):
        p.produce(topic, value=v, key=k, partition=0, timestamp=ts, headers=h,
                  on_delivery=lambda err, msg, i=i: on_delivery(err, msg, i))
    remaining = p.flush(common.TIMEOUT_S)
    expect(f"{codec}: records still queued after flush", 0, remaining)
    for i in range(len(records)):
        err, msg = reports[i]
        if err is not None:
            raise Mismatch(f"{codec} record {i} delivery failed: {err}")
        expect(f"{codec} record {i} offset", first_offset + i, msg.offset())
        expect(f"{codec} record {i} timestamp", (TIMESTAMP_CREATE_TIME, records[i][3]), msg.timestamp())


def consumer(bootstrap, group_id=None):
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "check.crcs": True,
        # confluent-kafka insists on a group id even for assign(); without subscribe() and with
        # auto-commit off the group is never joined, though librdkafka may look up its coordinator.
        "group.id": group_id or "compat-assign-only",
        "enable.auto.offset.store": group_id is not None,
    }
    # COMPAT_GROUP_PROTOCOL=consumer runs the group checks with KIP-848's protocol.
    protocol = os.environ.get("COMPAT_GROUP_PROTOCOL")
    if group_id is not None and protocol:
        conf["group.protocol"] = protocol
    return Consumer(conf)


def poll_until(c, count):
    got = []
    deadline = time.monotonic() + common.TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            raise Mismatch(f"consumer error: {msg.error()}")
        got.append(msg)
    if len(got) < count:
        raise Mismatch(f"expected at least {count} records within {common.TIMEOUT_S}s, got {len(got)}")
    return got


def verify(msg, expected, offset):
    expect(f"record at offset {offset} offset", offset, msg.offset())
    ts_type, ts = msg.timestamp()
    headers = msg.headers() or []
    common.verify(offset, expected, msg.key(), msg.value(), headers, ts, ts_type == TIMESTAMP_CREATE_TIME)


def check_consume(bootstrap, topic, expected, extra_record):
    c = consumer(bootstrap)
    try:
        expect("watermark offsets", (0, len(expected)), c.get_watermark_offsets(TopicPartition(topic, 0), timeout=common.TIMEOUT_S))
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = poll_until(c, len(expected))
        for i, msg in enumerate(got):
            verify(msg, expected[i], i)

        c.seek(TopicPartition(topic, 0, 25))
        verify(poll_until(c, 1)[0], expected[25], 25)

        target = 33
        ts = expected[target][3]
        found = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=common.TIMEOUT_S)[0]
        expect("offsets_for_times offset", target, found.offset)
        between = c.offsets_for_times([TopicPartition(topic, 0, ts - 500)], timeout=common.TIMEOUT_S)[0]
        expect("offsets_for_times between two records", target, between.offset)
        future = c.offsets_for_times([TopicPartition(topic, 0, int(time.time() * 1000) + 86_400_000)], timeout=common.TIMEOUT_S)[0]
        expect("offsets_for_times after the last record (end)", OFFSET_END, future.offset)
        c.seek(TopicPartition(topic, 0, found.offset))
        verify(poll_until(c, 1)[0], expected[target], target)

        # Seek to the end, then one more record must be the only thing that arrives.
        c.seek(TopicPartition(topic, 0, OFFSET_END))
        time.sleep(0.5)
        extra_record()
        msg = poll_until(c, 1)[0]
        expect("offset of the record produced after seeking to the end", len(expected), msg.offset())
        expect("value of the record produced after seeking to the end", b"after-end", msg.value())
    finally:
        c.close()


def produce_all(admin, bootstrap, topic, expected):
    create_topic(admin, topic, 1)
    for n, codec in enumerate(CODECS):
        first = n * RECORDS_PER_CODEC
        produce(bootstrap, topic, expected[first : first + RECORDS_PER_CODEC], codec, first)


def run(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    sections = common.Sections(CLIENT)
    expected = common.expected_records(common.base_timestamp_ms())
    after_end = [(b"k", b"after-end", [("h", b"v")], common.base_timestamp_ms() + 3_000_000)]
    if sections.run("idempotent produce (5 codecs)", lambda: produce_all(admin, bootstrap, topic, expected)):
        sections.run(
            "consume from the beginning, seek, offsets_for_times, seek to the end",
            lambda: check_consume(bootstrap, topic, expected, lambda: produce(bootstrap, topic, after_end, "none", len(expected))),
        )
    sections.run("admin: create with configs, describe, describe_configs, list, delete", lambda: check_admin(admin, topic))
    sections.finish()


def run_groups(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = topic + "-group"
    create_topic(admin, topic, 1)
    expected = common.expected_records(common.base_timestamp_ms(), 2 * RECORDS_PER_CODEC)
    produce(bootstrap, topic, expected[:RECORDS_PER_CODEC], "none", 0)
    produce(bootstrap, topic, expected[RECORDS_PER_CODEC:], "zstd", RECORDS_PER_CODEC)
    half = len(expected) // 2
    c = consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        got = poll_until(c, len(expected))
        for i, msg in enumerate(got):
            verify(msg, expected[i], i)
        expect("assignment", [(topic, 0)], [(tp.topic, tp.partition) for tp in c.assignment()])
        c.commit(offsets=[TopicPartition(topic, 0, half)], asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0)], timeout=common.TIMEOUT_S)[0]
        expect("committed offset", half, committed.offset)
    finally:
        c.close()
    c = consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        rest = poll_until(c, len(expected) - half)
        verify(rest[0], expected[half], half)
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0)], timeout=common.TIMEOUT_S)[0]
        expect("committed offset after second commit", len(expected), committed.offset)
    finally:
        c.close()
    print(f"{CLIENT}: consumer group subscribe, commit and resume OK on {topic}")


if __name__ == "__main__":
    try:
        common.main(CLIENT, run, run_groups, sys.argv[1:])
    except KafkaException as e:  # raised outside common.main's own handler only at import time
        sys.exit(f"{CLIENT}: ERROR: {e}")
