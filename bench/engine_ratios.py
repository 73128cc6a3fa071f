#!/usr/bin/env python3
"""Ratios kiln/peer from a harness raw JSON (../shared/bench/bench.py run output).

usage: engine_ratios.py bench/results/engine-DATE.json [CANDIDATE_NAME]

Prints a markdown table: per workload and scenario, kiln's median wall s, CPU-s (client + daemon)
and peak RSS MB, each peer's, and kiln/peer for the three (< 1 = kiln better), plus the median
foreign CPU-s (other processes on the box) during each cell's measurements, and the issue's
targets with met / not met.
"""
import json, statistics, sys

raw = json.load(open(sys.argv[1]))
kiln = sys.argv[2] if len(sys.argv) > 2 else "kiln"
res = raw["results"]
peers = [p for p in raw["meta"]["peers"] if p != kiln and p in res]
LABEL = {"cold": "cold build+push", "noop": "no-op rebuild", "touch": "1 file changed"}


def ok(ms):
    return [m for m in ms or [] if m.get("ok")]


def med(ms, f):
    v = [f(m) for m in ok(ms)]
    return statistics.median(v) if v else None


wall = lambda m: m["wall_s"]
cpu = lambda m: m["client_cpu_s"] + (m["daemon_cpu_s"] or 0)
rss = lambda m: m["peak_rss_mb"]


def foreign(ms):
    return statistics.median([m["foreign_cpu_s"] for m in ms]) if ms else None


def r(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}"


print("| workload | scenario | kiln wall s / CPU-s / RSS MB (foreign CPU-s) | "
      + " | ".join(f"{p}: wall s / CPU-s / RSS MB (foreign) | kiln/{p}: wall / CPU / RSS" for p in peers) + " |")
print("|---|---|---|" + "---|---|" * len(peers))
for wl in raw["meta"]["workloads"]:
    for scn in ("cold", "noop", "touch"):
        k = res.get(kiln, {}).get(wl, {}).get(scn)
        if not k and not any(res.get(p, {}).get(wl, {}).get(scn) for p in peers):
            continue
        kw, kc, kr = med(k, wall), med(k, cpu), med(k, rss)
        cells = [f"{kw:.2f} / {kc:.2f} / {kr:.0f} ({foreign(k):.1f})" if kw is not None else "n/a"]
        for p in peers:
            ms = res.get(p, {}).get(wl, {}).get(scn)
            pw, pc, pr = med(ms, wall), med(ms, cpu), med(ms, rss)
            cells.append(f"{pw:.2f} / {pc:.2f} / {pr:.0f} ({foreign(ms):.1f})" if pw is not None else "n/a")
            cells.append(f"{r(kw, pw)} / {r(kc, pc)} / {r(kr, pr)}")
        print(f"| {wl} | {LABEL[scn]} | " + " | ".join(cells) + " |")

# Issue 5's targets, against Docker's embedded BuildKit (the BuildKit peer available here).
bk = "buildkit" if "buildkit" in peers else "docker"
print(f"\nTargets (issue 5), BuildKit = `{bk}` in this run:\n")
for wl in raw["meta"]["workloads"]:
    g = lambda who, scn, f: med(res.get(who, {}).get(wl, {}).get(scn), f)
    if g(kiln, "cold", wall) is None:
        continue
    rows = []
    kc, bc = g(kiln, "cold", wall), g(bk, "cold", wall)
    rows.append(("cold at least as fast as BuildKit", f"{kc:.2f}s vs {bc:.2f}s", kc <= bc))
    kn, bn = g(kiln, "noop", wall), g(bk, "noop", wall)
    if kn is not None:
        rows.append(("no-op rebuild < 0.1 s", f"{kn:.3f}s", kn < 0.1))
        rows.append((">= 5x faster no-op than BuildKit", f"{bn / kn:.1f}x", bn / kn >= 5))
    kt, bt = g(kiln, "touch", wall), g(bk, "touch", wall)
    if kt is not None:
        rows.append(("one-file change >= 3x faster than BuildKit", f"{bt / kt:.1f}x", bt / kt >= 3))
    peak = max(m["peak_rss_mb"] for s in ("cold", "noop", "touch")
               for m in ok(res.get(kiln, {}).get(wl, {}).get(s)))
    rows.append(("peak RSS < 100 MB", f"{peak:.0f} MB (max over all runs)", peak < 100))
    print(f"| {wl} target | kiln | met? |\n|---|---|---|")
    for name, val, met in rows:
        print(f"| {name} | {val} | {'**met**' if met else '**not met**'} |")
