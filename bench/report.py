#!/usr/bin/python3
"""Turns the raw results of bench/run into the markdown report.

Usage: report.py META RESULTS_TSV MATERIALIZE_TSV [BYSTANDER_TSV] > results.md
"""
import statistics
import sys
from collections import defaultdict

PLACEMENTS = ["tracer", "same", "none"]
MODES = (
    ["native"]
    + [f"floor:{p}" for p in PLACEMENTS]
    + ["strace", "reprozip"]
    + [f"jailtrace:{p}" for p in PLACEMENTS]
    + ["jailtrace:bpf"]
    + [f"floor-all:{p}" for p in PLACEMENTS]
    + [f"floor-entry:{p}" for p in PLACEMENTS]
)
# Targets of issue 6: jailtrace / strace per workload, and the rest.
STRACE_TARGET = {"1": 0.25, "2": 0.5, "3": 0.25, "4": 0.25, "5": 0.5}
REPROZIP_TARGET = 1 / 4
FLOOR_TARGET = 1.5
RSS_TARGET_MIB = 64
# Targets of issue 12 for `--backend bpf`: / native on tar and find, and
# / the ptrace backend (its default placement) on every workload.
BPF_NATIVE_TARGET = {"1": 2.5, "4": 2.5, "6": 2.5}
BPF_PTRACE_TARGET = 0.35


def load_meta(path):
    meta, names = {}, {}
    for line in open(path, encoding="utf-8"):
        key, _, value = line.rstrip("\n").partition("=")
        if key == "workload":
            names[value.split()[0]] = value
        else:
            meta[key] = value
    return meta, names


def load_runs(path):
    secs = defaultdict(list)  # (workload, mode) -> [seconds]
    rss = defaultdict(list)  # (workload, mode) -> [KiB]
    rounds = defaultdict(dict)  # (workload, mode) -> {round: seconds}
    failed = defaultdict(int)
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            r, w, m, us, kb, rc = line.rstrip("\n").split("\t")
            if rc != "0":
                failed[(w, m)] += 1
                continue
            secs[(w, m)].append(int(us) / 1e6)
            rounds[(w, m)][r] = int(us) / 1e6
            if int(kb) > 0:
                rss[(w, m)].append(int(kb))
    return secs, rss, failed, rounds


def fmt_s(v):
    if v is None:
        return "–"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}"


def fmt_ratio(v, target):
    if v is None:
        return "–"
    mark = "" if target is None or v <= target else " ✗"
    return f"{v:.2f}{mark}"


def main():
    meta, names = load_meta(sys.argv[1])
    secs, rss, failed, by_round = load_runs(sys.argv[2])
    workloads = list(names)
    modes = [m for m in MODES if any((w, m) in secs or (w, m) in failed for w in workloads)]

    def med(w, m):
        v = secs.get((w, m))
        return statistics.median(v) if v else None

    def ratio(w, a, b):
        x, y = med(w, a), med(w, b)
        return x / y if x is not None and y else None

    out = []
    p = out.append
    p("# jailtrace benchmark results")
    p("")
    p(f"- date: {meta.get('date')}")
    p(f"- machine: {meta.get('nproc')} CPUs, {meta.get('cpu')}, {meta.get('kernel')}; "
      f"load average at the end: {meta.get('load')}")
    p(f"- {meta.get('jailtrace')}; {meta.get('strace')}"
      + (f"; reprozip {meta['reprozip'].split()[-1]}" if meta.get("reprozip") else ""))
    rounds, asked = meta.get("rounds"), meta.get("runs_asked")
    note = "" if rounds == asked else f" (RUNS={asked} asked; stopped by BUDGET)"
    p(f"- median of {rounds} interleaved rounds{note}; whole run {meta.get('total_seconds')} s")
    p("")
    p("## Wall time, median seconds")
    p("")
    p("| workload | " + " | ".join(m.replace(":", " ") for m in modes) + " |")
    p("|---|" + "---:|" * len(modes))
    for w in workloads:
        cells = []
        for m in modes:
            c = fmt_s(med(w, m))
            if failed.get((w, m)):
                c += f" ({failed[(w, m)]} failed)"
            cells.append(c)
        p(f"| {names[w]} | " + " | ".join(cells) + " |")
    p("")

    jt_modes = [m for m in modes if m.startswith("jailtrace:") and m != "jailtrace:bpf"]
    if jt_modes:
        p("## Ratios of `jailtrace record` (✗ = misses the issue-6 target)")
        p("")
        p("Targets: ≤ 0.25 × strace on 1, 3, 4 and ≤ 0.5 × on 2, 5; ≤ 0.25 × ReproZip; "
          "≤ 1.5 × the floor with the same `--cpu` placement.")
        p("")
        p("| workload | --cpu | / native | / strace | / reprozip | / floor |")
        p("|---|---|---:|---:|---:|---:|")
        for w in workloads:
            for m in jt_modes:
                place = m.split(":")[1]
                p(f"| {names[w]} | {place} "
                  f"| {fmt_ratio(ratio(w, m, 'native'), None)} "
                  f"| {fmt_ratio(ratio(w, m, 'strace'), STRACE_TARGET.get(w))} "
                  f"| {fmt_ratio(ratio(w, m, 'reprozip'), REPROZIP_TARGET)} "
                  f"| {fmt_ratio(ratio(w, m, 'floor:' + place), FLOOR_TARGET)} |")
        p("")
        # Which placement is fastest, per workload.
        p("Fastest placement per workload: " + "; ".join(
            f"{w}: {min(jt_modes, key=lambda m: med(w, m) or float('inf')).split(':')[1]}"
            for w in workloads if any(med(w, m) for m in jt_modes)) + ".")
        p("")

    if "jailtrace:bpf" in modes:
        m = "jailtrace:bpf"
        p("## `record --backend bpf` (✗ = misses the issue-12 target)")
        p("")
        p(f"Targets: ≤ {BPF_NATIVE_TARGET['1']} × native on tar and find; "
          f"≤ {BPF_PTRACE_TARGET} × the ptrace backend (`--cpu same`, the default) on every workload.")
        p("")
        by = defaultdict(list)
        if len(sys.argv) > 4:
            try:
                for line in open(sys.argv[4], encoding="utf-8"):
                    _, what, us = line.rstrip("\n").split("\t")
                    by[what].append(int(us) / 1e6)
            except FileNotFoundError:
                pass
        start = statistics.median(by["startup"]) if by.get("startup") else None
        paired_starts = [
            t for w in workloads for t in by_round.get((w, m + "-startup"), {}).values()
        ]
        paired_start = statistics.median(paired_starts) if paired_starts else None

        def steady(w, base):
            # The recording without its fixed start-up, against `base`: each
            # run less the start-up timed right before it, then the median.
            runs, starts = by_round.get((w, m), {}), by_round.get((w, m + "-startup"), {})
            diffs = [max(runs[r] - starts[r], 0) for r in runs if r in starts]
            n = med(w, base)
            if not diffs or n is None or n == 0:
                return None
            return statistics.median(diffs) / n

        p("| workload | / native | / ptrace (jailtrace same) | / strace "
          "| without start-up: / native | / ptrace |")
        p("|---|---:|---:|---:|---:|---:|")
        for w in workloads:
            p(f"| {names[w]} "
              f"| {fmt_ratio(ratio(w, m, 'native'), BPF_NATIVE_TARGET.get(w))} "
              f"| {fmt_ratio(ratio(w, m, 'jailtrace:same'), BPF_PTRACE_TARGET)} "
              f"| {fmt_ratio(ratio(w, m, 'strace'), None)} "
              f"| {fmt_ratio(steady(w, 'native'), BPF_NATIVE_TARGET.get(w))} "
              f"| {fmt_ratio(steady(w, 'jailtrace:same'), BPF_PTRACE_TARGET)} |")
        p("")
        if start is not None or paired_start is not None:
            p(f"Start-up (`record --backend bpf -- true`, target ≤ 0.1 s): {fmt_s(start)} s "
              f"on its own after the rounds, {fmt_s(paired_start)} s (median) when timed right "
              "before each bpf run of the rounds; the columns without start-up subtract "
              "the latter, run by run.")
            p("")
        if by.get("alone") and by.get("during"):
            a, d = statistics.median(by["alone"]), statistics.median(by["during"])
            p("Cost to an untraced process: `dd if=/dev/zero of=/dev/null bs=1 count=1000000` "
              f"(2 million syscalls) takes {fmt_s(a)} s alone and {fmt_s(d)} s while a bpf "
              f"recording runs: {fmt_ratio(d / a, None)}, "
              f"{(d - a) / 2e6 * 1e9:.0f} ns per syscall.")
            p("")

    rss_modes = [m for m in modes if any(rss.get((w, m)) for w in workloads)]
    if rss_modes:
        p("## Peak RSS, MiB (GNU time `%M`, largest of all rounds)")
        p("")
        p("`%M` is the largest peak of the tracer *and* of every process of the traced "
          "command (the kernel's rusage of a reaped child includes its reaped descendants), "
          "so a tracer's own peak is at most this; the `native` column is the command's own. "
          f"Target: jailtrace ≤ {RSS_TARGET_MIB} MiB on workload 4.")
        p("")
        p("| workload | " + " | ".join(m.replace(":", " ") for m in rss_modes) + " |")
        p("|---|" + "---:|" * len(rss_modes))
        for w in workloads:
            cells = []
            for m in rss_modes:
                v = rss.get((w, m))
                if not v:
                    cells.append("–")
                    continue
                mib = max(v) / 1024
                miss = w == "4" and m.startswith("jailtrace:") and mib > RSS_TARGET_MIB
                cells.append(f"{mib:.1f}" + (" ✗" if miss else ""))
            p(f"| {names[w]} | " + " | ".join(cells) + " |")
        p("")

    # Cells whose rounds disagree a lot: read those medians with care.
    noisy = []
    for w in workloads:
        for m in modes:
            v = secs.get((w, m))
            if v and len(v) > 1 and min(v) > 0 and max(v) / min(v) > 1.5:
                noisy.append(f"{w} {m} ({min(v):.3f}–{max(v):.3f} s)")
    if noisy:
        p("Noisy cells (slowest round > 1.5 × fastest): " + "; ".join(noisy) + ".")
        p("")

    p("## `materialize` vs `cp -a --parents` (workload-3 manifest, empty target)")
    p("")
    mat = defaultdict(list)
    mat_failed = defaultdict(int)
    try:
        for line in open(sys.argv[3], encoding="utf-8"):
            _, m, us, rc = line.rstrip("\n").split("\t")
            if rc != "0":
                mat_failed[m] += 1
            else:
                mat[m].append(int(us) / 1e6)
    except FileNotFoundError:
        pass
    note = meta.get("materialize_note", "")
    if mat:
        p(f"{note}.")
        p("")
        p("| | median s |")
        p("|---|---:|")
        for m, label in (("materialize", "`jailtrace materialize`"), ("cp", "`cp -a --parents`")):
            v = mat.get(m)
            cell = fmt_s(statistics.median(v)) if v else "–"
            if mat_failed.get(m):
                cell += f" ({mat_failed[m]} failed)"
            p(f"| {label} | {cell} |")
        if mat.get("materialize") and mat.get("cp"):
            r = statistics.median(mat["materialize"]) / statistics.median(mat["cp"])
            p(f"| ratio (target ≤ 1) | {fmt_ratio(r, 1.0)} |")
    else:
        p(note or "not run")
    p("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
