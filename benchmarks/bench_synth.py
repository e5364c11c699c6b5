"""Benchmark ``fraudscan synth``: wall time and peak RSS per world size, one subprocess each.

Usage::

    .venv/bin/python benchmarks/bench_synth.py                 # 10k, 100k, 300k persons
    .venv/bin/python benchmarks/bench_synth.py --sizes 10000 100000 --keep /tmp/bench

Each size runs in a fresh interpreter so the peak RSS (``ru_maxrss`` of the child) belongs to that
run alone. Prints a Markdown table ready for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

CHILD = """
import json, sys, time
from fraudscan.synth import SynthConfig, generate
cfg = SynthConfig() if sys.argv[4] == "default" else SynthConfig(
    rule_violation_rate=float(sys.argv[4]))
t = time.perf_counter()
ws = generate(sys.argv[1], persons=int(sys.argv[2]), seed=int(sys.argv[3]), config=cfg)
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "rows": ws.row_counts()}))
"""


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_one(persons: int, seed: int, out: Path, rv_rate: str = "default") -> dict:
    """Generate one world in a child process; return its timings and row counts."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(persons), str(seed),
                           rv_rate],
                          capture_output=True, text=True, check=True)
    total = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    # RUSAGE_CHILDREN reports the largest child so far; sizes run in increasing order
    res.update(persons=persons, process_s=total, peak_rss_gb=max(peak_kb, before) / 1024**2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="Write workspaces here instead of a temp dir.")
    ap.add_argument("--rule-violation-rate", default="default",
                    help="SynthConfig.rule_violation_rate (0 skips the rule-violation injector "
                         "of fraudscan.synth.rule_violations; default: the config default).")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench_synth_"))
    print(f"# fraudscan synth benchmark, {date.today()}, {os.cpu_count()} CPUs "
          f"({cpu_model()}), Python {platform.python_version()}, "
          f"rule_violation_rate={args.rule_violation_rate}")
    print()
    print("| persons | settlements | fee lines | trace scans | generate (s) | process (s) "
          "| peak RSS (GB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in sorted(args.sizes):
        r = run_one(n, args.seed, base / f"w{n}", args.rule_violation_rate)
        rows = r["rows"]
        print(f"| {n:,} | {rows['settlements']:,} | {rows['fee_lines']:,} | "
              f"{rows['trace_scans']:,} | {r['wall']:.1f} | {r['process_s']:.1f} | "
              f"{r['peak_rss_gb']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
