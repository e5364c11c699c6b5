"""Screening-model benchmark: run time, peak memory and recall/precision per scenario.

    python benchmarks/bench_leads.py --persons 100000 --seed 7

Generates a synthetic world (once, under $FRAUDSCAN_BENCH_DIR or /tmp/fraudscan-bench) with a
seed the tests do not use, runs every detector in a fresh subprocess (so peak memory is the
detectors' own) and scores the leads against the injected labels. Prints Markdown tables for
docs/performance.md and docs/detectors.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _worlds import DEFAULT_ROOT, peak_rss_mib, world


def one(path: str) -> dict:
    """Run every detector on one workspace; timings, memory and the evaluation."""
    import fraudscan.leads as fl

    t0 = time.perf_counter()
    df = fl.run(path)
    total = time.perf_counter() - t0
    ev = fl.evaluate(path, df)
    return {"total_s": round(total, 2), "peak_rss_mib": round(peak_rss_mib()),
            "leads": len(df), "runs": df.attrs["runs"],
            "evaluation": json.loads(ev.to_json(orient="records"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, nargs="+", default=[100_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    for n in args.persons:
        ws = world(n, args.seed, args.root)
        out = subprocess.run([sys.executable, __file__, "--one", str(ws.path)], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"\n### {n:,} persons, seed {args.seed}: {r['leads']:,} leads in "
              f"{r['total_s']:.1f} s, peak RSS {r['peak_rss_mib']:,} MiB\n")
        secs = {x["detector"]: x["seconds"] for x in r["runs"]}
        print("| detector | seconds | leads | labelled claims | recall | precision "
              "| precision (any fraud) | false leads (on decoys) | decoys hit |")
        print("|---|---|---|---|---|---|---|---|---|")
        for e in r["evaluation"]:
            def pct(x: float | None) -> str:
                return "-" if x is None else f"{x:.2f}"

            print(f"| `{e['detector']}` | {secs[e['detector']]:.2f} | {e['leads']} "
                  f"| {e['labelled']} | {pct(e['recall'])} | {pct(e['precision'])} "
                  f"| {pct(e['precision_any_fraud'])} | {e['false_leads']} "
                  f"({e['false_on_decoys']}) | {e['decoys_hit']} |")


if __name__ == "__main__":
    main()
