"""Collusion-graph benchmark: build time, peak memory, growth and ring recovery.

    python benchmarks/bench_graph.py --persons 10000 100000 300000 --seed 7

For each size a synthetic world is generated (once, under $FRAUDSCAN_BENCH_DIR or
/tmp/fraudscan-bench), the screening models run (rings are scored by their leads), and then
``fraudscan.graph.build`` runs in a fresh subprocess so its peak memory is its own. The same
community graph is also handed to networkx's Louvain (and Leiden where networkx has a backend
for it) for the speed ratio. Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _worlds import DEFAULT_ROOT, peak_rss_mib, world


def one(path: str, compare: bool) -> dict:
    """Build the graph of one workspace; returns timings, sizes, memory and ring recovery."""
    import networkx as nx

    import fraudscan.graph as fg
    from fraudscan.graph.communities import leiden, simple_graph, to_networkx

    t0 = time.perf_counter()
    res = fg.build(path)
    total = time.perf_counter() - t0
    peak = peak_rss_mib()
    _, summary = fg.evaluate_rings(path)
    out = {"build_s": round(total, 2), "timings": res.timings, "peak_rss_mib": round(peak),
           "nodes": res.nodes, "edges": res.edges, "edge_kinds": res.edge_kinds,
           "rings": len(res.rings), **{k: round(v, 3) for k, v in summary.items()}}
    if compare:
        from fraudscan.workspace import Workspace

        cfg = fg.default_config()
        with Workspace(path).connect() as con:
            edges = con.execute("SELECT * FROM graph_edges WHERE list_contains(?, kind)",
                                [cfg["communities"]["edge_kinds"]]).df()
        wg = simple_graph(edges)
        t0 = time.perf_counter()
        leiden(wg.graph, cfg["communities"])
        out["igraph_leiden_s"] = round(time.perf_counter() - t0, 3)
        G = to_networkx(wg)
        t0 = time.perf_counter()
        nx.community.louvain_communities(G, weight="weight", seed=42)
        out["networkx_louvain_s"] = round(time.perf_counter() - t0, 3)
        try:
            t0 = time.perf_counter()
            nx.community.leiden_communities(G, weight="weight", seed=42)
            out["networkx_leiden_s"] = round(time.perf_counter() - t0, 3)
        except Exception as e:  # networkx ships Leiden only through backends
            out["networkx_leiden_s"] = f"n/a ({type(e).__name__})"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--no-compare", action="store_true", help="skip the networkx timings")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, not args.no_compare)))
        return
    rows = []
    for n in args.persons:
        ws = world(n, args.seed, args.root)
        import fraudscan.leads as fl

        fl.run(ws)
        cmd = [sys.executable, __file__, "--one", str(ws.path)]
        if args.no_compare:
            cmd.append("--no-compare")
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                      text=True).stdout.strip().splitlines()[-1])
        r["persons"] = n
        rows.append(r)
        print(json.dumps(r), flush=True)
    print("\n| persons | build + communities (s) | edges / Leiden / rings (s) | peak RSS (MiB) "
          "| nodes | edges | rings | ring recall | ring purity | igraph Leiden (s) "
          "| networkx Louvain (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["timings"]
        lv, nl = r.get("igraph_leiden_s"), r.get("networkx_louvain_s")
        ratio = f"{nl / lv:.0f}x" if isinstance(lv, float) and isinstance(nl, float) and lv \
            else "-"
        print(f"| {r['persons']:,} | {r['build_s']:.1f} | {t['edges']:.1f} / "
              f"{t['communities']:.2f} / {t['rings']:.1f} | {r['peak_rss_mib']:,} "
              f"| {r['nodes']:,} | {r['edges']:,} | {r['rings']} | {r['mean_recall']:.2f} "
              f"| {r['mean_purity']:.2f} | {lv} | {nl} | {ratio} |")


if __name__ == "__main__":
    main()
