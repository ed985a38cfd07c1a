"""One consumer-group member for tests/compat/group-churn.py.

Usage: group_member.py --client kafka-python|confluent [--protocol classic|consumer]
                       [--assignor NAME] [--bootstrap HOST:PORT] [--delay-ms MS] GROUP TOPIC

Joins GROUP on TOPIC and, for every record, prints `PARTITION OFFSET VALUE` to stdout (flushed),
then after each poll batch prints `committing`, commits the batch's offsets synchronously and prints
`committed PARTITION NEXT_OFFSET` for each partition of a commit the broker accepted, or
`commit-failed ERROR` when it did not (confluent: a failed commit's offsets are committed again
with the next batch, or after the next consume() if it brings none, while the member keeps the
partition). SIGTERM makes it finish the batch in hand, commit it,
close the consumer (which leaves the group) and print `closed`.

--assignor (confluent, classic protocol): partition.assignment.strategy, e.g. cooperative-sticky
(default: librdkafka's range,roundrobin). Assignment changes are printed as `assigned [P,...]`,
`revoked [...]`. The rebalance callbacks do not assign: when a callback does not call
(incremental_)assign itself, confluent-kafka calls it after the callback, incremental_assign /
incremental_unassign when the group's rebalance protocol is COOPERATIVE, assign / unassign
otherwise, as librdkafka requires. Each batch's commit is tried before the next consume(), where
the callbacks run, so a revocation finds nothing printed and not yet tried.
"""

import os
import signal
import sys
import time

stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse(argv):
    opts = {"client": None, "protocol": "classic", "bootstrap": os.environ.get("BOOTSTRAP", "127.0.0.1:9092"),
            "delay_ms": 0, "assignor": None}
    rest = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--client":
            opts["client"] = args.pop(0)
        elif a == "--protocol":
            opts["protocol"] = args.pop(0)
        elif a == "--bootstrap":
            opts["bootstrap"] = args.pop(0)
        elif a == "--delay-ms":
            opts["delay_ms"] = int(args.pop(0))
        elif a == "--assignor":
            opts["assignor"] = args.pop(0)
        else:
            rest.append(a)
    if opts["client"] not in ("kafka-python", "confluent") or len(rest) != 2:
        sys.exit(__doc__)
    opts["group"], opts["topic"] = rest
    return opts


def run_confluent(o):
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    conf = {
        "bootstrap.servers": o["bootstrap"],
        "group.id": o["group"],
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }
    if o["protocol"] == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = 6000
        conf["heartbeat.interval.ms"] = 1000
        if o["assignor"]:
            conf["partition.assignment.strategy"] = o["assignor"]
    c = Consumer(conf)

    # Next offsets of printed records whose commit failed while this member may still own the
    # partition: committed again with every later commit (also when a consume() brings nothing,
    # so a partition's last batch is not left uncommitted), dropped when the partition is revoked
    # (its next owner reads from the committed offset again).
    uncommitted = {}

    def show(what, parts):
        out(f"{what} [{','.join(str(p) for p in sorted(tp.partition for tp in parts))}]")

    def on_revoke(_c, parts):
        show("revoked", parts)
        for tp in parts:
            uncommitted.pop(tp.partition, None)

    c.subscribe([o["topic"]], on_assign=lambda _c, parts: show("assigned", parts), on_revoke=on_revoke)
    while not stop:
        msgs = c.consume(num_messages=50, timeout=0.3)
        nexts = dict(uncommitted)
        for m in msgs:
            if m.error():
                out(f"error {m.error()}")
                continue
            out(f"{m.partition()} {m.offset()} {m.value().decode()}")
            nexts[m.partition()] = m.offset() + 1
            if o["delay_ms"]:
                time.sleep(o["delay_ms"] / 1000)
        if not nexts:
            continue
        tps = [TopicPartition(o["topic"], p, n) for p, n in sorted(nexts.items())]
        out("committing")  # a member killed during the commit may or may not have committed
        try:
            res = c.commit(offsets=tps, asynchronous=False)
        except KafkaException as e:
            out(f"commit-failed {e}")
            uncommitted.update(nexts)
            continue
        for tp in res:
            if tp.error:
                out(f"commit-failed {tp.partition} {tp.error}")
                uncommitted[tp.partition] = nexts[tp.partition]
            else:
                out(f"committed {tp.partition} {tp.offset}")
                uncommitted.pop(tp.partition, None)
    c.close()
    out("closed")


def run_kafka_python(o):
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    c = KafkaConsumer(
        bootstrap_servers=o["bootstrap"],
        group_id=o["group"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_records=50,
    )
    c.subscribe([o["topic"]])
    while not stop:
        batch = c.poll(timeout_ms=300)
        offsets = {}
        for tp, records in batch.items():
            for r in records:
                out(f"{tp.partition} {r.offset} {r.value.decode()}")
                offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
                if o["delay_ms"]:
                    time.sleep(o["delay_ms"] / 1000)
        if not offsets:
            continue
        out("committing")
        try:
            c.commit(offsets)
        except KafkaError as e:
            out(f"commit-failed {type(e).__name__} {e}")
            continue
        for tp, om in sorted(offsets.items()):
            out(f"committed {tp.partition} {om.offset}")
    c.close()
    out("closed")


def main():
    o = parse(sys.argv[1:])
    signal.signal(signal.SIGTERM, on_term)
    out(f"start {o['client']} {o['protocol']} {o['assignor'] or 'default'} pid {os.getpid()}")
    if o["client"] == "confluent":
        run_confluent(o)
    else:
        if o["protocol"] != "classic" or o["assignor"]:
            sys.exit("kafka-python: only the classic group protocol with the default assignors")
        run_kafka_python(o)


if __name__ == "__main__":
    main()
