"""Round-trip checks with kafka-python (pure Python client).

Usage: kafka_python_compat.py [--groups] [--bootstrap HOST:PORT] TOPIC
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.structs import OffsetAndMetadata

import common
from common import CODECS, RECORDS_PER_CODEC, Mismatch, expect

CLIENT = "kafka-python"


def create_topic(admin, name, partitions, configs=None):
    admin.create_topics(
        {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
        wait_for_metadata=True,
    )


def check_admin(admin, topic):
    other = topic + "-admin"
    create_topic(admin, other, 3, {"retention.ms": "3600000"})
    described = admin.describe_topics([other])
    expect(f"describe_topics names for {other}", [other], [t["name"] for t in described])
    partitions = described[0]["partitions"]
    expect(f"partition count of {other}", 3, len(partitions))
    for p in partitions:
        expect(f"leader of {other}/{p['partition_index']}", 1, p["leader_id"])
    resource = ConfigResource(ConfigResourceType.TOPIC, other)
    configs = admin.describe_configs([resource], config_filter="all")
    topic_configs = configs["topic"][other]
    expect("retention.ms", "3600000", topic_configs["retention.ms"]["value"])
    expect("cleanup.policy", "delete", topic_configs["cleanup.policy"]["value"])
    if other not in admin.list_topics():
        raise Mismatch(f"list_topics lacks {other}")
    admin.delete_topics([other])
    common.wait_until(f"{other} gone from list_topics", lambda: other not in admin.list_topics())


def produce(bootstrap, topic, records, codec, first_offset):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type=None if codec == "none" else codec, linger_ms=20
    )
    try:
        futures = [
            producer.send(topic, key=k, value=v, headers=h, partition=0, timestamp_ms=ts) for k, v, h, ts in records
        ]
        producer.flush()
        for i, future in enumerate(futures):
            md = future.get(timeout=common.TIMEOUT_S)
            expect(f"{codec} record {i} offset", first_offset + i, md.offset)
            expect(f"{codec} record {i} timestamp", records[i][3], md.timestamp)
    finally:
        producer.close()


def consumer(bootstrap, group_id=None):
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        check_crcs=True,
    )


def poll_until(c, count):
    got = []
    deadline = time.monotonic() + common.TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=200).values():
            got.extend(records)
    if len(got) < count:
        raise Mismatch(f"expected at least {count} records within {common.TIMEOUT_S}s, got {len(got)}")
    return sorted(got, key=lambda r: r.offset)


def verify(record, expected, offset):
    expect(f"record at offset {offset} offset", offset, record.offset)
    headers = [(k, bytes(v)) for k, v in record.headers]
    common.verify(offset, expected, record.key, record.value, headers, record.timestamp, record.timestamp_type == 0)


def check_consume(bootstrap, topic, expected):
    tp = TopicPartition(topic, 0)
    c = consumer(bootstrap)
    try:
        c.assign([tp])
        expect("beginning_offsets", 0, c.beginning_offsets([tp])[tp])
        expect("end_offsets", len(expected), c.end_offsets([tp])[tp])
        c.seek_to_beginning(tp)
        got = poll_until(c, len(expected))
        expect("records consumed from the beginning", len(expected), len(got))
        for i, record in enumerate(got):
            verify(record, expected[i], i)

        c.seek(tp, 25)
        verify(poll_until(c, 1)[0], expected[25], 25)

        target = 33
        by_time = c.offsets_for_times({tp: expected[target][3]})[tp]
        expect("offsets_for_times offset", target, by_time.offset)
        expect("offsets_for_times timestamp", expected[target][3], by_time.timestamp)
        between = c.offsets_for_times({tp: expected[target][3] - 500})[tp]
        expect("offsets_for_times between two records", target, between.offset)
        future = c.offsets_for_times({tp: int(time.time() * 1000) + 86_400_000})[tp]
        expect("offsets_for_times after the last record", None, future)
        c.seek(tp, by_time.offset)
        verify(poll_until(c, 1)[0], expected[target], target)

        c.seek_to_end(tp)
        expect("position after seek_to_end", len(expected), c.position(tp))
    finally:
        c.close()


def produce_all(bootstrap, topic, expected):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        create_topic(admin, topic, 1)
    finally:
        admin.close()
    for n, codec in enumerate(CODECS):
        first = n * RECORDS_PER_CODEC
        produce(bootstrap, topic, expected[first : first + RECORDS_PER_CODEC], codec, first)


def admin_checks(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        check_admin(admin, topic)
    finally:
        admin.close()


def run(bootstrap, topic):
    sections = common.Sections(CLIENT)
    expected = common.expected_records(common.base_timestamp_ms())
    if sections.run("produce (5 codecs)", lambda: produce_all(bootstrap, topic, expected)):
        sections.run("consume from the beginning, seek, offsets_for_times, seek_to_end",
                     lambda: check_consume(bootstrap, topic, expected))
    sections.run("admin: create with configs, describe, describe_configs, list, delete",
                 lambda: admin_checks(bootstrap, topic))
    sections.finish()


def run_groups(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    group = topic + "-group"
    try:
        create_topic(admin, topic, 1)
        expected = common.expected_records(common.base_timestamp_ms(), 2 * RECORDS_PER_CODEC)
        produce(bootstrap, topic, expected[:RECORDS_PER_CODEC], "none", 0)
        produce(bootstrap, topic, expected[RECORDS_PER_CODEC:], "gzip", RECORDS_PER_CODEC)
        tp, half = TopicPartition(topic, 0), len(expected) // 2
        c = consumer(bootstrap, group)
        try:
            c.subscribe([topic])
            got = poll_until(c, len(expected))
            for i, record in enumerate(got):
                verify(record, expected[i], i)
            expect("assignment", {tp}, c.assignment())
            c.commit({tp: OffsetAndMetadata(half, "compat", -1)})
            expect("committed offset", half, c.committed(tp))
        finally:
            c.close()
        offsets = admin.list_group_offsets({group: None})[group]
        expect("list_group_offsets", half, offsets[tp].offset)
        c = consumer(bootstrap, group)
        try:
            c.subscribe([topic])
            rest = poll_until(c, len(expected) - half)
            verify(rest[0], expected[half], half)
            c.commit()
        finally:
            c.close()
        expect("group offset after commit", len(expected), admin.list_group_offsets({group: None})[group][tp].offset)
    finally:
        admin.close()
    print(f"{CLIENT}: consumer group subscribe, commit and resume OK on {topic}")


if __name__ == "__main__":
    common.main(CLIENT, run, run_groups, sys.argv[1:])
