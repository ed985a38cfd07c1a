#!/usr/bin/env python3
"""Turns one bench/run.sh run (RAW/results.jsonl, RAW/e2e.jsonl, RAW/machine.txt) into
OUT.md plus OUT-throughput.png and OUT-latency.png.

  aggregate.py RAW_DIR OUT_PREFIX [NOTE]

NOTE (bench/run.sh passes $BENCH_NOTE) is printed at the top, e.g. what else the machine ran.

Every figure is the median over the rounds that produced it; the ratio is Freshet / Kafka, and
the "Freshet leads" column reads the ratio in the metric's own direction (higher or lower is better).
"""
import json
import os
import statistics
import sys
from collections import defaultdict

METRIC_ORDER = ["mb_per_s", "records_per_s", "mb_per_s_with_join", "group_join_ms", "avg_latency_ms", "p99_latency_ms", "p50_ms", "p99_ms",
                "p999_ms", "max_ms", "achieved_rate", "cpu_s_per_gb", "rss_mib", "startup_ms",
                "create_s", "metadata_ms_median", "restart_to_first_produce_ms", "disk_mb_per_s", "tcp_mb_per_s"]
MODE_TEXT = {
    "nofsync": "no fsync (Kafka default; Freshet topic flush.messages=flush.ms=i64::MAX)",
    "fsync": "fsync before ack (Kafka log.flush.interval.messages=1; Freshet default)",
    "-": "machine",
}


def load(raw):
    rows = []
    with open(os.path.join(raw, "results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    e2e = []
    path = os.path.join(raw, "e2e.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            e2e = [json.loads(line) for line in f if line.strip()]
    machine = {}
    with open(os.path.join(raw, "machine.txt")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            machine[k] = v
    return rows, e2e, machine


def medians(rows):
    """(workload, mode, case, metric) -> {broker: (median or None, n rounds, unit, better)}."""
    groups = defaultdict(list)
    meta = {}
    for r in rows:
        key = (r["workload"], r["mode"], r["case"], r["metric"])
        groups[key + (r["broker"],)].append(r["value"])
        meta[key] = (r["unit"], r["better"])
    out = defaultdict(dict)
    for (w, m, c, metric, broker), vals in groups.items():
        ok = [v for v in vals if v is not None]
        med = statistics.median(ok) if ok else None
        out[(w, m, c, metric)][broker] = (med, len(ok), len(vals))
    return out, meta


def fmt(v):
    if v is None:
        return "failed"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def sort_key(key):
    w, m, c, metric = key
    order = ["ceiling", "produce", "consume", "e2e", "resources", "startup", "partitions10k"]
    return (order.index(w) if w in order else 99, m, c, METRIC_ORDER.index(metric) if metric in METRIC_ORDER else 99)


HEADLINE = {"mb_per_s", "p99_ms", "p999_ms", "cpu_s_per_gb", "rss_mib", "startup_ms", "create_s", "restart_to_first_produce_ms",
            "metadata_ms_median", "disk_mb_per_s", "tcp_mb_per_s"}


def table(out, meta, only=None):
    lines = ["| workload | durability | case | metric | Freshet | Kafka | ratio F/K | Freshet leads | rounds F/K |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | :---: | --- |"]
    for key in sorted(out, key=sort_key):
        w, mode, case, metric = key
        if only is not None and metric not in only:
            continue
        unit, better = meta[key]
        by = out[key]
        if w == "ceiling":
            med, n, total = by.get("machine", (None, 0, 0))
            lines.append(f"| {w} | - | {case} | {metric} ({unit}) | {fmt(med)} | | | | {n} |")
            continue
        f, k = by.get("freshet", (None, 0, 0)), by.get("kafka", (None, 0, 0))
        ratio = f[0] / k[0] if f[0] is not None and k[0] not in (None, 0) else None
        leads = ""
        if ratio is not None:
            leads = "yes" if (ratio > 1 if better == "higher" else ratio < 1) else "no"
        lines.append(f"| {w} | {mode} | {case} | {metric} ({unit}, {better} is better) | {fmt(f[0])} | "
                     f"{fmt(k[0])} | {('%.2fx' % ratio) if ratio is not None else '-'} | {leads} | "
                     f"{f[1]}/{f[2]} · {k[1]}/{k[2]} |")
    return lines


def charts(out, e2e, prefix):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    for mode in ("nofsync", "fsync"):
        cases = sorted({c for (w, m, c, metric) in out if w == "produce" and m == mode and metric == "mb_per_s"},
                       key=lambda c: (c.startswith("native"), c.startswith("perf"), c))
        if not cases:
            continue
        fig, ax = plt.subplots(figsize=(12, 4.5))
        width = 0.4
        xs = range(len(cases))
        for i, (broker, color) in enumerate((("freshet", "#1f77b4"), ("kafka", "#7f7f7f"))):
            vals = [(out[("produce", mode, c, "mb_per_s")].get(broker, (None,))[0] or 0) for c in cases]
            ax.bar([x + (i - 0.5) * width for x in xs], vals, width, label=broker.capitalize(), color=color)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(cases, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel("MB/s (median)")
        ax.set_title("Produce throughput (ProducerPerformance; native = librdkafka; perf = freshet perf), "
                     f"{MODE_TEXT[mode].split(' (')[0]}")
        ax.legend()
        fig.tight_layout()
        path = f"{prefix}-produce-{mode}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    if e2e:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        styles = {("freshet", "nofsync"): ("#1f77b4", "-"), ("freshet", "fsync"): ("#1f77b4", "--"),
                  ("kafka", "nofsync"): ("#7f7f7f", "-"), ("kafka", "fsync"): ("#7f7f7f", "--")}
        by = defaultdict(list)
        for row in e2e:
            by[(row["broker"], row["mode"])].append(row["e2e"]["curve"])
        for (broker, mode), curves in sorted(by.items()):
            qs = [q for q, _ in curves[0]]
            med = [statistics.median(c[i][1] for c in curves) for i in range(len(qs))]
            # x: "number of nines" so that p99.9 and p99.99 are spread out.
            import math
            xs = [min(5.0, -math.log10(1 - q)) if q < 1 else 5.0 for q in qs]
            color, ls = styles.get((broker, mode), ("black", ":"))
            ax.plot(xs, med, ls, color=color, marker="o", label=f"{broker.capitalize()} ({mode})")
        ax.set_xticks([math.log10(2), 1, 2, 3, 4, 5])
        ax.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99", "max"])
        ax.set_yscale("log")
        ax.set_ylabel("end-to-end latency, ms (median over rounds)")
        ax.set_title("End-to-end latency percentiles at a fixed rate")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = f"{prefix}-e2e-latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def notes(out, quick):
    """Warnings that follow from the figures themselves."""
    said = []
    disk = out.get(("ceiling", "-", "dd-1MiB-fdatasync", "disk_mb_per_s"), {}).get("machine", (None,))[0]
    if disk is not None and disk > 1000:
        said.append(f"The disk takes `dd conv=fdatasync` at {disk:,.0f} MB/s: its flushes most likely end in a "
                    "host cache, so the fsync rows cost less here than on a disk that honours them.")
    if quick:
        said.append("With the quick record counts, a ProducerPerformance row is mostly the Java tool's own "
                    "start-up and warm-up on one core; the `native` (librdkafka) and `perf` (`freshet perf`) rows "
                    "show the brokers' throughput better.")
    return [f"- {s}" for s in said] + ([""] if said else [])


def main():
    raw, prefix = sys.argv[1], sys.argv[2]
    rows, e2e, machine = load(raw)
    out, meta = medians(rows)
    pngs = charts(out, e2e, prefix)
    quick = machine.get("rounds", "").startswith("1 quick=1") or "quick=1" in machine.get("rounds", "")
    lines = [f"# Freshet vs Apache Kafka {machine.get('kafka', '')}: {os.path.basename(prefix)}", ""]
    if quick:
        lines += ["**Quick smoke run** (`bench/run.sh --quick`: one round, small record counts). "
                  "Not a measurement to quote: one round, and figures move with whatever else the machine runs.", ""]
    if len(sys.argv) > 3 and sys.argv[3].strip():
        lines += [f"**Note:** {sys.argv[3].strip()}", ""]
    lines += notes(out, quick)
    lines += ["Machine and run:", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += ["", "Each figure is the median over the rounds that produced it (`rounds F/K` = rounds with a figure / rounds run, "
              "per broker). Ratio = Freshet / Kafka. Durability modes: " + "; ".join(
                  f"`{k}` = {v}" for k, v in MODE_TEXT.items() if k != "-") + ". "
              "How each row is measured: docs/bench.md.", ""]
    lines += ["## Headline figures", "", "Throughput in MB/s, end-to-end p99/p99.9, CPU per GB, memory, start-up.", ""]
    lines += table(out, meta, HEADLINE)
    lines += ["", "## Every figure", ""]
    lines += table(out, meta)
    if pngs:
        lines += ["", "## Charts", ""]
        lines += [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in pngs]
    lines.append("")
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
