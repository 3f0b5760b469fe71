#!/usr/bin/env python3
"""Turns Google Benchmark JSON from sb_jit_bench (and sb_trampoline_bench)
into a PNG chart and Markdown tables (issue 6).

    tools/bench_chart.py results.json --png results.png --markdown results.md

Reads rows named compile/<arch>/<program> and exec/<program>/<engine>
(engine: jit, kernel, native, interp), and BM_Direct / BM_Hooked from the
trampoline benchmark. With --benchmark_repetitions the median of each row is
used, otherwise its single value. Time is Google Benchmark's real_time
field, which holds the manual (CPU) time sb_jit_bench reports.

The chart needs matplotlib (Debian: apt-get install python3-matplotlib);
--markdown alone needs nothing beyond the standard library.
"""

import argparse
import json
import math
import sys

ENGINES = [  # (key, label, colour)
    ("jit", "Springboard JIT (x86-64)", "#1f77b4"),
    ("kernel", "Linux kernel JIT", "#ff7f0e"),
    ("native", "native C (gcc -O2, no vectorization)", "#2ca02c"),
    ("interp", "Springboard interpreter", "#9e9e9e"),
]
ARCHS = ["x86-64", "arm64", "riscv64"]
ARCH_COLOURS = {"x86-64": "#1f77b4", "arm64": "#d62728", "riscv64": "#8c564b"}
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# Issue 6's targets.
TARGET_VS_KERNEL = 0.9
TARGET_VS_NATIVE = 1.2
TARGET_NS_PER_INSN = 150.0
TARGET_US_100 = 20.0


def load(paths):
    """Merges the files' rows; returns (context, {row: fields}, {row: error}, {row: cv})."""
    context, rows, errors, samples, cvs = {}, {}, {}, {}, {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for k, v in data.get("context", {}).items():
            context.setdefault(k, v)
        for b in data.get("benchmarks", []):
            name = b.get("run_name", b["name"]).replace("/manual_time", "").replace("/real_time", "")
            if b.get("error_occurred"):
                errors[name] = b.get("error_message", "error")
                continue
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    rows[name] = b
                elif b.get("aggregate_name") == "cv":
                    cvs[name] = b["real_time"]
            else:
                samples.setdefault(name, []).append(b)
    for name, runs in samples.items():  # no repetitions: the single run (or the middle one)
        if name not in rows:
            runs = sorted(runs, key=lambda b: b["real_time"])
            rows[name] = runs[len(runs) // 2]
    return context, rows, errors, cvs


def ns(row):
    return row["real_time"] * UNIT_NS[row.get("time_unit", "ns")]


def geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


class Results:
    def __init__(self, paths):
        self.context, self.rows, self.errors, self.cvs = load(paths)
        self.programs = []
        for name in self.rows.keys() | self.errors.keys():
            parts = name.split("/")
            if parts[0] == "exec" and len(parts) == 3 and parts[1] not in self.programs:
                self.programs.append(parts[1])
        order = ["sum", "fnv", "crc32", "collatz", "sort", "bits", "parser", "copy"]
        self.programs.sort(key=lambda p: (order.index(p) if p in order else len(order), p))

    def exec_ns(self, program, engine):
        row = self.rows.get(f"exec/{program}/{engine}")
        return ns(row) if row else None

    def counter(self, name, key):
        row = self.rows.get(name)
        return row.get(key) if row else None

    def compile_row(self, arch, program):
        return self.rows.get(f"compile/{arch}/{program}")

    def ratio(self, program, a, b):
        x, y = self.exec_ns(program, a), self.exec_ns(program, b)
        return x / y if x and y else None

    def machine(self):
        c = self.context
        cpu = c.get("cpu_model", "unknown CPU")
        parts = [f"{cpu}, {c.get('num_cpus', '?')} CPUs"]
        if c.get("mhz_per_cpu"):
            parts.append(f"{c['mhz_per_cpu']} MHz")
        if c.get("kernel"):
            parts.append(c["kernel"])
        return ", ".join(parts)


def fmt_us(v):
    if v is None:
        return "—"
    us = v / 1e3
    return f"{us:.3g}" if us < 100 else f"{us:.0f}"


def fmt_ratio(v):
    return "—" if v is None else f"{v:.2f}"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def markdown(r):
    out = []
    c = r.context
    load = " ".join(c.get("loadavg_at_start", "?").split()[:3])
    out.append(f"Measured on {r.machine()}; load average at start {load}; {c.get('date', '')}.  ")
    out.append(f"BPF: {c.get('bpf_compiler', '?')}; native: {c.get('native_compiler', '?')}; "
               f"kernel JIT: bpf_jit_enable={c.get('bpf_jit_enable', '?')}.")
    if r.cvs:
        reps = next((b.get("repetitions") for b in r.rows.values() if b.get("repetitions")), "?")
        cv = sorted(r.cvs.values())
        noisy = sorted(n for n, v in r.cvs.items() if v > 0.10)
        out.append(f"Medians of {reps} repetitions; coefficient of variation: median {cv[len(cv) // 2] * 100:.1f}%"
                   + (f", over 10% for {', '.join('`' + n + '`' for n in noisy)}" if noisy else "") + ".")
    out.append("")

    # Execution.
    out.append("Execution, µs per run (median), and ratios (lower is better for Springboard):")
    out.append("")
    out.append("| program | JIT | kernel JIT | native C | interpreter | JIT / kernel | JIT / native | interp / JIT |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    vs_kernel, vs_native, interp_x = [], [], []
    for p in r.programs:
        jk, jn, ij = r.ratio(p, "jit", "kernel"), r.ratio(p, "jit", "native"), r.ratio(p, "interp", "jit")
        vs_kernel.append(jk), vs_native.append(jn), interp_x.append(ij)
        cells = [fmt_us(r.exec_ns(p, e)) for e, _, _ in ENGINES]
        out.append(f"| {p} | " + " | ".join(cells) + f" | {fmt_ratio(jk)} | {fmt_ratio(jn)} | {fmt_ratio(ij)} |")
    g_kernel, g_native, g_interp = geomean(vs_kernel), geomean(vs_native), geomean(interp_x)
    out.append(f"| **geomean** | | | | | **{fmt_ratio(g_kernel)}** | **{fmt_ratio(g_native)}** | "
               f"**{fmt_ratio(g_interp)}** |")
    skipped = sorted((n, e) for n, e in r.errors.items() if n.startswith("exec/"))
    if skipped:
        out.append("")
        for n, e in skipped:
            out.append(f"- `{n}` skipped: {e}")
    out.append("")

    # Compile.
    out.append("Compile time, ns per BPF instruction slot (median): bytes to machine code, end to end "
               "(decode, validate, lower, verify, select, LLVM MC encode), and the front end alone "
               "(bytes to verified IR):")
    out.append("")
    archs = [a for a in ARCHS if any(r.compile_row(a, p) for p in r.programs + ["synthetic100"])]
    out.append("| program | slots | " + " | ".join(archs) + " | front end |")
    out.append("|---|---:|" + "---:|" * (len(archs) + 1))
    per_arch = {a: [] for a in archs}
    for p in r.programs + ["synthetic100"]:
        insns = next((r.compile_row(a, p)["insns"] for a in archs if r.compile_row(a, p)), None)
        cells = []
        for a in archs:
            row = r.compile_row(a, p)
            cells.append("—" if not row else f"{row['ns_per_insn']:.0f}")
            if row and p != "synthetic100":
                per_arch[a].append(row["ns_per_insn"])
        front = r.rows.get(f"frontend/{p}")
        cells.append(f"{front['ns_per_insn']:.0f}" if front else "—")
        out.append(f"| {p} | {int(insns) if insns is not None else '—'} | " + " | ".join(cells) + " |")
    out.append("| **mean of the 8 programs** | | " + " | ".join(
        f"**{sum(v) / len(v):.0f}**" if v else "—" for v in per_arch.values()) + " | |")
    syn = {a: r.compile_row(a, "synthetic100") for a in archs}
    for p, label in (("synthetic100", "µs for synthetic100"), ("empty", "µs for `empty` (2 slots: the fixed cost)")):
        front = r.rows.get(f"frontend/{p}")
        cells = [f"{ns(r.compile_row(a, p)) / 1e3:.1f}" if r.compile_row(a, p) else "—" for a in archs]
        cells.append(f"{ns(front) / 1e3:.2f}" if front else "—")
        out.append(f"| {label} | | " + " | ".join(cells) + " |")
    out.append("")

    # Code size.
    out.append("x86-64 code size in bytes for the kernel's exact bytecode (the xdp entry with its "
               "subprograms; the kernel's jited_prog_len):")
    out.append("")
    out.append("| program | BPF slots | Springboard | kernel | Springboard / kernel |")
    out.append("|---|---:|---:|---:|---:|")
    sizes = []
    for p in r.programs:
        ours = r.counter(f"exec/{p}/jit", "xdp_code_bytes")
        theirs = r.counter(f"exec/{p}/kernel", "code_bytes")
        slots = r.counter(f"exec/{p}/kernel", "insns")
        q = ours / theirs if ours and theirs else None
        sizes.append(q)
        out.append(f"| {p} | {int(slots) if slots else '—'} | {int(ours) if ours else '—'} | "
                   f"{int(theirs) if theirs else '—'} | {fmt_ratio(q)} |")
    g_size = geomean(sizes)
    out.append(f"| **geomean** | | | | **{fmt_ratio(g_size)}** |")
    out.append("")

    # Trampoline.
    direct = r.rows.get("BM_Direct")
    hooked = sorted(n for n in r.rows if n.startswith("BM_Hooked"))
    if direct and hooked:
        out.append("Trampoline, ns per call of a hooked function (`sb_trampoline_bench`):")
        out.append("")
        out.append("| call | ns | overhead vs direct |")
        out.append("|---|---:|---:|")
        d = ns(direct)
        out.append(f"| direct | {d:.1f} | |")
        for n in hooked:
            out.append(f"| {n.replace('BM_Hooked/', 'hooked: ')} | {ns(r.rows[n]):.1f} | +{ns(r.rows[n]) - d:.1f} |")
        out.append("")

    # Targets.
    x86 = per_arch.get("x86-64") or []
    mean_x86 = sum(x86) / len(x86) if x86 else None
    worst_x86 = max(x86) if x86 else None
    syn_x86 = ns(syn["x86-64"]) / 1e3 if syn.get("x86-64") else None
    out.append("Issue 6 targets (x86-64):")
    out.append("")
    out.append("| target | measured | |")
    out.append("|---|---|---|")
    if g_kernel is not None:
        out.append(f"| JIT time <= {TARGET_VS_KERNEL}x the kernel JIT's (geomean) | {g_kernel:.2f}x | "
                   f"{verdict(g_kernel <= TARGET_VS_KERNEL)} |")
    else:
        out.append(f"| JIT time <= {TARGET_VS_KERNEL}x the kernel JIT's (geomean) | kernel rows skipped | "
                   "not measured |")
    if g_native is not None:
        out.append(f"| JIT time <= {TARGET_VS_NATIVE}x native C (geomean) | {g_native:.2f}x | "
                   f"{verdict(g_native <= TARGET_VS_NATIVE)} |")
    if mean_x86 is not None:
        out.append(f"| compile <= {TARGET_NS_PER_INSN:.0f} ns per instruction | mean {mean_x86:.0f} ns, "
                   f"worst {worst_x86:.0f} ns | {verdict(worst_x86 <= TARGET_NS_PER_INSN)} |")
    if syn_x86 is not None:
        out.append(f"| compile < {TARGET_US_100:.0f} µs for a 100-instruction program | {syn_x86:.1f} µs | "
                   f"{verdict(syn_x86 < TARGET_US_100)} |")
    if g_size is not None:
        worst = max(q for q in sizes if q)
        out.append(f"| code size <= the kernel JIT's, per program | geomean {g_size:.2f}x, worst {worst:.2f}x | "
                   f"{verdict(worst <= 1.0)} |")
    return "\n".join(out) + "\n"


def chart(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 10.5), dpi=110)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.35, 1], hspace=0.38, wspace=0.22)
    ax = fig.add_subplot(grid[0, :])
    progs = r.programs
    width = 0.8 / len(ENGINES)
    for i, (engine, label, colour) in enumerate(ENGINES):
        xs, ys = [], []
        for j, p in enumerate(progs):
            v = r.exec_ns(p, engine)
            if v:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(v / 1e3)
        ax.bar(xs, ys, width, label=label, color=colour, edgecolor="white", linewidth=0.5)
    ax.set_yscale("log")
    ax.set_xticks(range(len(progs)))
    labels = []
    for p in progs:
        jk = r.ratio(p, "jit", "kernel")
        jn = r.ratio(p, "jit", "native")
        extra = []
        if jk:
            extra.append(f"{jk:.2f}x kernel")
        if jn:
            extra.append(f"{jn:.2f}x native")
        labels.append(p + ("\nJIT = " + "\n".join(extra) if extra else ""))
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_ylabel("µs per run (log scale)")
    ax.set_title("Execution time per program (lower is better)", fontsize=12)
    ax.grid(axis="y", which="major", alpha=0.35)
    ax.grid(axis="y", which="minor", alpha=0.12)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=9, ncol=2, framealpha=0.9)
    top = max((r.exec_ns(p, e) or 0) for p in progs for e, _, _ in ENGINES) / 1e3
    ax.set_ylim(top=top * 5 if top else None)

    # Compile time per instruction.
    ax2 = fig.add_subplot(grid[1, 0])
    cprogs = progs + ["synthetic100"]
    archs = [a for a in ARCHS if any(r.compile_row(a, p) for p in cprogs)]
    series = [(a, a, ARCH_COLOURS[a]) for a in archs] + [("front", "front end only", "#bdbdbd")]
    cw = 0.8 / len(series)
    for i, (key, label, colour) in enumerate(series):
        xs, ys = [], []
        for j, p in enumerate(cprogs):
            row = r.rows.get(f"frontend/{p}") if key == "front" else r.compile_row(key, p)
            if row:
                xs.append(j - 0.4 + cw * (i + 0.5))
                ys.append(row["ns_per_insn"])
        ax2.bar(xs, ys, cw, label=label, color=colour, edgecolor="white", linewidth=0.5)
    ax2.axhline(TARGET_NS_PER_INSN, color="black", linestyle="--", linewidth=1,
                label=f"target {TARGET_NS_PER_INSN:.0f} ns")
    ax2.set_xticks(range(len(cprogs)))
    ax2.set_xticklabels([p if p != "synthetic100" else "synth.\n100" for p in cprogs], fontsize=8, rotation=0)
    ax2.set_ylabel("ns per BPF instruction")
    syn = [f"{a} {ns(r.compile_row(a, 'synthetic100')) / 1e3:.1f} µs" for a in archs
           if r.compile_row(a, "synthetic100")]
    ax2.set_title("Compile time, bytes to machine code\n100-insn program: " + ", ".join(syn), fontsize=10)
    ax2.grid(axis="y", alpha=0.35)
    ax2.set_axisbelow(True)
    ax2.legend(fontsize=8)

    # Code size.
    ax3 = fig.add_subplot(grid[1, 1])
    sw = 0.38
    sides = [("jit", "Springboard", "#1f77b4"), ("kernel", "Linux kernel", "#ff7f0e")]
    for i, (key, label, colour) in enumerate(sides):
        xs, ys = [], []
        for j, p in enumerate(progs):
            v = r.counter(f"exec/{p}/jit", "xdp_code_bytes") if key == "jit" else r.counter(f"exec/{p}/kernel",
                                                                                           "code_bytes")
            if v:
                xs.append(j - sw / 2 + sw * i)
                ys.append(v)
        ax3.bar(xs, ys, sw, label=label, color=colour, edgecolor="white", linewidth=0.5)
    for j, p in enumerate(progs):
        ours = r.counter(f"exec/{p}/jit", "xdp_code_bytes")
        theirs = r.counter(f"exec/{p}/kernel", "code_bytes")
        if ours and theirs:
            ax3.text(j, max(ours, theirs) * 1.02, f"{ours / theirs:.2f}x", ha="center", va="bottom", fontsize=7)
    ax3.set_xticks(range(len(progs)))
    ax3.set_xticklabels(progs, fontsize=8)
    ax3.set_ylabel("bytes of x86-64 code")
    ax3.set_title("x86-64 code size for the same bytecode (xdp entry)\nlabels: Springboard / kernel", fontsize=10)
    ax3.set_ylim(top=ax3.get_ylim()[1] * 1.08)
    ax3.grid(axis="y", alpha=0.35)
    ax3.set_axisbelow(True)
    ax3.legend(fontsize=8)

    load = r.context.get("loadavg_at_start", "").split()
    title = f"Springboard performance — {r.machine()}" + (f" — load average {load[0]} at start" if load else "")
    fig.suptitle(title, fontsize=11, y=0.94)
    fig.savefig(path, bbox_inches="tight")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+", help="Google Benchmark JSON output (--benchmark_out)")
    ap.add_argument("--png", help="write the chart here")
    ap.add_argument("--markdown", help="write the tables here ('-': standard output)")
    args = ap.parse_args()
    r = Results(args.json)
    if not r.programs:
        sys.exit("bench_chart: no exec/<program>/<engine> rows in " + ", ".join(args.json))
    if args.markdown:
        text = markdown(r)
        if args.markdown == "-":
            sys.stdout.write(text)
        else:
            with open(args.markdown, "w") as f:
                f.write(text)
    if args.png:
        chart(r, args.png)


if __name__ == "__main__":
    main()
