#!/usr/bin/env python3
"""Consumer groups under churn with real clients: every record consumed exactly once.

    tests/compat/group-churn.sh [BOOTSTRAP] [--variants A,B,...] [--members 1,2,4,6]
                                [--records M] [--delay-ms MS] [--kip848-kill] [--timeout S] [--logs DIR]
    tests/compat/group-churn.sh --self-test     (checks the checker on made-up member outputs)

For each client variant and each group size N: creates a 4-partition topic, produces M records
with unique values (confluent-kafka), starts N members (one process each, see
python/group_member.py, java/.../GroupMember.java, go/member) and, while they consume, starts
one extra member, stops one with SIGTERM (it commits what it printed and leaves the group) and,
for N >= 2, SIGKILLs one that is consuming. Then it waits until the group's committed offsets
reach the log end of every partition, stops the rest with SIGTERM and checks from what each
member printed (`PARTITION OFFSET VALUE` per record, then `committed PARTITION NEXT` or
`commit-failed ...` after each batch):

  - every value printed is the value produced at that partition and offset;
  - every record was printed, and exactly one printing of it was followed by a commit covering it
    (no record lost, none committed twice);
  - a record printed more than once was, on every other printing, printed by a member that was
    SIGKILLed before committing it, or whose commit of that batch the client reported as failed
    (the at-least-once window a failed commit opens; such re-deliveries are counted);
  - no printing is left without an outcome by a member that was not killed (members stopped
    with SIGTERM commit what they printed);
  - members stopped with SIGTERM printed `closed` and exited cleanly; no member died on its own.

Variants: java-classic (the client's default assignors: range, eager), java-cooperative
(CooperativeStickyAssignor only), java-static (group.instance.id per member, KIP-345),
java-consumer (KIP-848, the broker's default assignor), java-consumer-range (KIP-848 with
group.remote.assignor=range), confluent-classic, confluent-cooperative
(partition.assignment.strategy=cooperative-sticky), confluent-consumer, kafka-python,
franz-range, franz-roundrobin, franz-sticky, franz-cooperative-sticky. The KIP-848 variants
(java-consumer, java-consumer-range, confluent-consumer) skip the SIGKILL unless --kip848-kill is
given: their session timeout is set by the broker (45 s by default), so a killed member's
partitions stall that long. java-static: a static member does not leave the group when it
closes, so the SIGTERMed member is restarted at once with its instance id (it takes the old
member's place and assignment); the SIGKILLed one is not restarted, the broker removes it when
its 6 s session times out.

Prints one PASS/FAIL line per variant and group size and a summary; exits 1 on any failure.
Run it through group-churn.sh, which installs the clients and uses the Python venv.
"""

import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Producer, TopicPartition, ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
PARTITIONS = 4
# variant -> (member program, its flags). Java and confluent flags: see the member programs.
VARIANTS = {
    "java-classic": ("java", ["--protocol", "classic"]),
    "java-cooperative": ("java", ["--protocol", "classic", "--assignor", "cooperative-sticky"]),
    "java-static": ("java", ["--protocol", "classic"]),  # + --instance-id, see member_cmd
    "java-consumer": ("java", ["--protocol", "consumer"]),
    "java-consumer-range": ("java", ["--protocol", "consumer", "--remote-assignor", "range"]),
    "confluent-classic": ("confluent", ["--protocol", "classic"]),
    "confluent-cooperative": ("confluent", ["--protocol", "classic", "--assignor", "cooperative-sticky"]),
    "confluent-consumer": ("confluent", ["--protocol", "consumer"]),
    "kafka-python": ("kafka-python", []),
    "franz-range": ("franz", ["--balancer", "range"]),
    "franz-roundrobin": ("franz", ["--balancer", "roundrobin"]),
    "franz-sticky": ("franz", ["--balancer", "sticky"]),
    "franz-cooperative-sticky": ("franz", ["--balancer", "cooperative-sticky"]),
}
ALL_VARIANTS = list(VARIANTS)
# KIP-848 (group.protocol=consumer): the session timeout is the broker's.
KIP848_VARIANTS = {"java-consumer", "java-consumer-range", "confluent-consumer"}
# Static members (group.instance.id): a SIGTERMed one is restarted with its instance id.
STATIC_VARIANTS = {"java-static"}


def member_cmd(variant, bootstrap, delay_ms, group, topic, instance_id=None):
    program, flags = VARIANTS[variant]
    flags = flags + (["--instance-id", instance_id] if instance_id else [])
    common = ["--bootstrap", bootstrap, "--delay-ms", str(delay_ms)]
    py = os.path.join(HERE, "python", ".venv", "bin", "python")
    gm = os.path.join(HERE, "python", "group_member.py")
    if program == "java":
        jar = os.path.join(HERE, "java", "target", "compat-java-1.jar")
        lib = os.path.join(HERE, "java", "target", "lib", "*")
        return ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", f"{jar}:{lib}",
                "dev.freshet.compat.GroupMember"] + common + flags + [group, topic]
    if program in ("confluent", "kafka-python"):
        return [py, "-u", gm, "--client", program] + common + flags + [group, topic]
    if program == "franz":
        return [os.path.join(HERE, "go", "bin", "member")] + common + flags + [group, topic]
    raise SystemExit(f"unknown variant {variant}")


class Member:
    def __init__(self, name, cmd, logdir):
        self.name = name
        self.out_path = os.path.join(logdir, name + ".out")
        self.err_path = os.path.join(logdir, name + ".err")
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        self.fate = "running"  # running | terminated | killed | stopped

    def alive(self):
        return self.proc.poll() is None

    def lines(self):
        with open(self.out_path) as f:
            return f.read().splitlines()

    def records_printed(self):
        n = 0
        for line in self.lines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[0].isdigit():
                n += 1
        return n

    def close_files(self):
        self.out.close()
        self.err.close()


def at_end(member, ends):
    """Whether the last record the member printed is the last of its partition."""
    for line in reversed(member.lines()):
        parts = line.split(" ")
        if len(parts) == 3 and parts[0].isdigit():
            return int(parts[1]) + 1 >= ends[int(parts[0])]
    return False


def produce(bootstrap, topic, count):
    """Produces `count` records round-robin over the partitions; returns {(p, o): value}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    got, errors = {}, []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            got[(msg.partition(), msg.offset())] = msg.value().decode()

    for i in range(count):
        p.produce(topic, value=f"{topic}-v{i:06d}".encode(), partition=i % PARTITIONS, on_delivery=report)
        if i % 500 == 0:
            p.poll(0)
    p.flush(30)
    if errors or len(got) != count:
        raise RuntimeError(f"produce: {len(got)} of {count} delivered, errors {errors[:3]}")
    return got


def create_topic(admin, topic):
    fs = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    for f in fs.values():
        f.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == PARTITIONS:
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic} not ready")


def committed(admin, group, topic):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    res = admin.list_consumer_group_offsets([req])[group].result(10)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def analyse(members, produced, ends):
    """Returns (problems, stats) from the members' outputs."""
    problems = []
    occ = {}  # (p, o) -> [(member, status)]
    failed_commits = 0
    for m in members:
        pending = []  # [(p, o, value, [status])]
        # Prints whose commit failed while the member may still own the partition: its next
        # accepted commit of that partition covers them (at-least-once holds, nobody re-reads).
        failed = {}  # p -> [(o, [status])]
        in_commit_block = False
        for line in m.lines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[0].isdigit() and parts[1].lstrip("-").isdigit():
                if in_commit_block:
                    for p, o, v, st in pending:
                        if st[0] is None:
                            st[0] = "unresolved"
                    pending = []
                    in_commit_block = False
                p, o, v = int(parts[0]), int(parts[1]), parts[2]
                # A re-read from an earlier offset means the member rewound: the earlier
                # failed prints at or after it stay failed, the new print is what counts.
                failed[p] = [(fo, fst) for fo, fst in failed.get(p, []) if fo < o]
                st = [None, False]  # [outcome, a commit covering it was announced]
                pending.append((p, o, v, st))
                occ.setdefault((p, o), []).append((m, st))
                want = produced.get((p, o))
                if want != v:
                    problems.append(f"{m.name} printed {p}/{o} = {v!r}, produced {want!r}")
            elif parts == ["committing"]:
                for p, o, v, st in pending:
                    st[1] = True
            elif parts[0] == "committed" and len(parts) == 3:
                in_commit_block = True
                cp, nxt = int(parts[1]), int(parts[2])
                for p, o, v, st in pending:
                    if p == cp and o < nxt and st[0] is None:
                        st[0] = "committed"
                for fo, fst in failed.pop(cp, []):
                    if fo < nxt and fst[0] == "failed":
                        fst[0] = "committed"
            elif parts[0] == "commit-failed":
                in_commit_block = True
                failed_commits += 1
                only = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                for p, o, v, st in pending:
                    if st[0] is None and (only is None or only == p):
                        st[0] = "failed"
                        failed.setdefault(p, []).append((o, st))
        for p, o, v, st in pending:
            if st[0] is None:
                if m.fate != "killed":
                    st[0] = "unresolved"
                else:
                    # Killed during a commit, the commit may have landed (then nobody reads
                    # the records again) or not (then another member does).
                    st[0] = "killed-in-commit" if st[1] else "killed"
    lost = [k for k in produced if k not in occ]
    if lost:
        problems.append(f"{len(lost)} records never printed, e.g. {sorted(lost)[:5]}")
    redelivered_kill = redelivered_failed = committed_at_kill = 0
    for key, lst in sorted(occ.items()):
        statuses = [st[0] for _, st in lst]
        n_committed = statuses.count("committed")
        landed_at_kill = n_committed == 0 and "killed-in-commit" in statuses
        if landed_at_kill:
            committed_at_kill += 1
        elif n_committed != 1:
            who = ", ".join(f"{m.name}:{st[0]}" for m, st in lst)
            problems.append(f"record {key[0]}/{key[1]} committed {n_committed} times ({who})")
        for m, st in lst:
            if st[0] == "unresolved":
                problems.append(f"{m.name} ({m.fate}) printed {key[0]}/{key[1]} and never committed it")
        if len(lst) > 1:
            redelivered_kill += statuses.count("killed") + statuses.count("killed-in-commit")
            redelivered_failed += statuses.count("failed")
    stats = {
        "printed": sum(len(v) for v in occ.values()),
        "distinct": len(occ),
        "redelivered_after_kill": redelivered_kill,
        "committed_by_killed_member": committed_at_kill,
        "redelivered_after_failed_commit": redelivered_failed,
        "failed_commits": failed_commits,
    }
    return problems[:20] + ([f"... {len(problems) - 20} more"] if len(problems) > 20 else []), stats


class FakeMember:
    """A member whose output is given, for --self-test."""

    def __init__(self, name, fate, text):
        self.name, self.fate, self._lines = name, fate, text.strip().splitlines()

    def lines(self):
        return self._lines


def self_test():
    """Checks that analyse() accepts a correct history and rejects each kind of wrong one."""
    produced = {(0, 0): "a", (0, 1): "b", (1, 0): "c"}
    ends = [2, 1, 0, 0]
    good = [
        FakeMember("m0", "killed", "0 0 a\ncommitted 0 1\n0 1 b"),
        FakeMember("m1", "stopped", "1 0 c\ncommitted 1 1\n0 1 b\ncommitted 0 2\nclosed"),
    ]
    cases = {
        "good": (good, None),
        "failed commit then redelivery": ([
            FakeMember("m0", "stopped", "0 0 a\n0 1 b\ncommit-failed RebalanceInProgress\nclosed"),
            FakeMember("m1", "stopped", "0 0 a\n0 1 b\n1 0 c\ncommitted 0 2\ncommitted 1 1"),
        ], None),
        "committed twice": ([
            FakeMember("m0", "stopped", "0 0 a\n0 1 b\ncommitted 0 2"),
            FakeMember("m1", "stopped", "0 1 b\n1 0 c\ncommitted 0 2\ncommitted 1 1"),
        ], "committed 2 times"),
        "lost": ([FakeMember("m0", "stopped", "0 0 a\n0 1 b\ncommitted 0 2")], "never printed"),
        "wrong value": ([FakeMember("m0", "stopped", "0 0 a\n0 1 x\n1 0 c\ncommitted 0 2\ncommitted 1 1")],
                        "produced 'b'"),
        "printed, not killed, never committed": ([
            FakeMember("m0", "terminated", "0 0 a\n0 1 b\n1 0 c\ncommitted 0 2\ncommitted 1 1\n1 0 c"),
        ], "never committed it"),
        "failed commit covered by the same member's next commit": ([
            FakeMember("m0", "stopped", "0 0 a\ncommit-failed StaleMemberEpoch\n0 1 b\n1 0 c\n"
                       "committed 0 2\ncommitted 1 1\nclosed"),
        ], None),
        "failed commit, rewound, committed once": ([
            FakeMember("m0", "stopped", "0 0 a\n0 1 b\ncommit-failed 0 StaleMemberEpoch\n0 0 a\n0 1 b\n"
                       "1 0 c\ncommitted 0 2\ncommitted 1 1\nclosed"),
        ], None),
        "failed commit never covered": ([
            FakeMember("m0", "stopped", "0 0 a\ncommitted 0 1\n0 1 b\ncommit-failed StaleMemberEpoch\n"
                       "1 0 c\ncommitted 1 1\nclosed"),
        ], "committed 0 times"),
        "killed during its commit, which landed": ([
            FakeMember("m0", "killed", "0 0 a\ncommitting\ncommitted 0 1\n0 1 b\n1 0 c\ncommitting"),
        ], None),
        "killed member's print never redelivered": ([
            FakeMember("m0", "killed", "0 0 a\n0 1 b\ncommitted 0 2\n1 0 c"),
        ], "committed 0 times"),
    }
    bad = 0
    for name, (members, expect) in cases.items():
        problems, _ = analyse(members, produced, ends)
        ok = (not problems) if expect is None else any(expect in p for p in problems)
        print(f"self-test {'ok' if ok else 'WRONG'}: {name}: {problems or 'no problems'}")
        bad += not ok
    sys.exit(1 if bad else 0)


def run_one(variant, n, args, admin, logroot, run_id):
    topic = f"churn-{variant}-n{n}-{run_id}"
    group = topic + "-g"
    logdir = os.path.join(logroot, f"{variant}-n{n}")
    os.makedirs(logdir, exist_ok=True)
    events = []
    t0 = time.monotonic()

    def event(msg):
        events.append(f"{time.monotonic() - t0:7.2f}s {msg}")

    create_topic(admin, topic)
    produced = produce(args.bootstrap, topic, args.records)
    ends = [0] * PARTITIONS
    for (p, o) in produced:
        ends[p] = max(ends[p], o + 1)
    event(f"produced {args.records} records, log ends {ends}")

    members = []

    static = variant in STATIC_VARIANTS

    def start(k, instance_id=None):
        if static and instance_id is None:
            instance_id = f"{group}-i{k}"
        cmd = member_cmd(variant, args.bootstrap, args.delay_ms, group, topic, instance_id)
        m = Member(f"m{k}", cmd, logdir)
        m.instance_id = instance_id
        members.append(m)
        event(f"started {m.name} pid {m.proc.pid}" + (f" instance {instance_id}" if instance_id else ""))
        return m

    for k in range(n):
        start(k)
    kip848 = variant in KIP848_VARIANTS
    do_kill = n >= 2 and (not kip848 or args.kip848_kill)
    plan = [(0.15, "join"), (0.35, "term")] + ([(0.55, "kill")] if do_kill else [])
    problems = []
    ran = []
    deadline = time.monotonic() + args.timeout
    last_counts = {}
    done = False
    while time.monotonic() < deadline:
        time.sleep(0.25)
        for m in members:
            if m.fate == "running" and not m.alive():
                m.fate = "died"
                problems.append(f"{m.name} exited on its own with {m.proc.returncode} (see {m.err_path})")
                event(f"{m.name} died rc {m.proc.returncode}")
        counts = {m.name: m.records_printed() for m in members}
        progress = sum(counts.values()) / args.records
        if plan and progress >= plan[0][0]:
            _, what = plan.pop(0)
            ran.append(what)
            live = [m for m in members if m.fate == "running"]
            if what == "join":
                start(len(members))
            elif what in ("term", "kill") and live:
                # Prefer a member that is consuming right now: its count grew since the last
                # look and its last record is not the end of its partition.
                busy = [m for m in live if counts[m.name] > last_counts.get(m.name, 0)
                        and not at_end(m, ends)]
                victim = (busy or live)[0]
                if what == "term":
                    victim.fate = "terminated"
                    victim.proc.send_signal(signal.SIGTERM)
                    event(f"SIGTERM {victim.name} at {progress:.0%} consumed")
                    try:
                        victim.proc.wait(30)
                    except subprocess.TimeoutExpired:
                        problems.append(f"{victim.name} did not exit within 30 s of SIGTERM")
                        victim.proc.kill()
                        victim.proc.wait()
                    event(f"{victim.name} exited rc {victim.proc.returncode}")
                    if static:
                        # A static member does not leave on close: its partitions wait for it
                        # until the session times out. Its restart (same instance id) takes
                        # its place and its assignment at once.
                        start(len(members), victim.instance_id)
                else:
                    victim.fate = "killed"
                    victim.proc.send_signal(signal.SIGKILL)
                    victim.proc.wait()
                    event(f"SIGKILL {victim.name} at {progress:.0%} consumed")
        last_counts = counts
        if not plan:
            try:
                c = committed(admin, group, topic)
            except Exception as e:  # the coordinator may be busy; try again
                event(f"offset fetch: {e}")
                continue
            if all(c.get(p, -1) == ends[p] for p in range(PARTITIONS)):
                event(f"committed offsets reached the log ends {ends}")
                done = True
                break
    if plan:
        problems.append(f"churn incomplete: events {[w for _, w in plan]} never ran (consumption too slow?)")
    if not done:
        try:
            c = committed(admin, group, topic)
        except Exception as e:
            c = str(e)
        problems.append(f"committed offsets {c} did not reach log ends {ends} within {args.timeout} s")
    for m in members:
        if m.fate == "running":
            m.fate = "stopped"
            m.proc.send_signal(signal.SIGTERM)
    for m in members:
        if m.fate in ("stopped", "terminated"):
            try:
                m.proc.wait(30)
            except subprocess.TimeoutExpired:
                problems.append(f"{m.name} did not exit within 30 s of SIGTERM")
                m.proc.kill()
                m.proc.wait()
            rc = m.proc.returncode
            if rc not in (0, 143) or "closed" not in m.lines():
                problems.append(f"{m.name} ({m.fate}) did not close cleanly: rc {rc} (see {m.err_path})")
        m.close_files()
    event("all members stopped")
    found, stats = analyse(members, produced, ends)
    problems += found
    stats["churn"] = "+".join(ran) or "none"
    with open(os.path.join(logdir, "events.log"), "w") as f:
        f.write("\n".join(events) + "\n")
    return problems, stats, time.monotonic() - t0, logdir


def parse_args(argv):
    class A:
        pass

    a = A()
    a.bootstrap = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
    a.variants = list(ALL_VARIANTS)
    a.members = [1, 2, 4, 6]
    a.records = 1000
    a.delay_ms = 10
    a.kip848_kill = False
    a.timeout = 150.0
    a.logs = None
    args = list(argv)
    while args:
        x = args.pop(0)
        if x == "--variants":
            a.variants = args.pop(0).split(",")
        elif x == "--members":
            a.members = [int(v) for v in args.pop(0).split(",")]
        elif x == "--records":
            a.records = int(args.pop(0))
        elif x == "--delay-ms":
            a.delay_ms = int(args.pop(0))
        elif x == "--kip848-kill":
            a.kip848_kill = True
        elif x == "--timeout":
            a.timeout = float(args.pop(0))
        elif x == "--logs":
            a.logs = args.pop(0)
        elif x == "--self-test":
            self_test()
        elif x in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        elif x.startswith("-"):
            sys.exit(f"group-churn: unknown option {x}")
        else:
            a.bootstrap = x
    for v in a.variants:
        if v not in ALL_VARIANTS:
            sys.exit(f"group-churn: unknown variant {v} (known: {' '.join(ALL_VARIANTS)})")
    return a


def main():
    args = parse_args(sys.argv[1:])
    logroot = args.logs or subprocess.check_output(["mktemp", "-d", "/tmp/freshet-churn.XXXXXX"], text=True).strip()
    os.makedirs(logroot, exist_ok=True)
    print(f"group-churn: bootstrap {args.bootstrap}, {args.records} records, members {args.members}, logs in {logroot}",
          flush=True)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    run_id = f"{int(time.time())}-{os.getpid()}"
    passed = failed = 0
    t_all = time.monotonic()
    for variant in args.variants:
        for n in args.members:
            try:
                problems, stats, secs, logdir = run_one(variant, n, args, admin, logroot, run_id)
            except Exception as e:  # setup failed (topic, produce): the variant fails
                problems, stats, secs, logdir = [f"error: {e!r}"], {}, 0.0, logroot
            detail = " ".join(f"{k}={v}" for k, v in stats.items())
            if problems:
                failed += 1
                print(f"FAIL {variant} n={n} ({secs:.1f} s, {detail}, logs {logdir})", flush=True)
                for p in problems:
                    print(f"    {p}", flush=True)
            else:
                passed += 1
                print(f"PASS {variant} n={n} ({secs:.1f} s, {detail})", flush=True)
    print(f"group-churn: {passed} passed, {failed} failed in {time.monotonic() - t_all:.0f} s", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
