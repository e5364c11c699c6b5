"""Collusion-graph benchmark: build time, peak memory, growth and ring recovery.

    python benchmarks/bench_graph.py --persons 10000 100000 300000 --seed 7

For each size a synthetic world is generated (once, under $FRAUDSCAN_BENCH_DIR or
/tmp/fraudscan-bench), the screening models run (rings are scored by their leads), and then
``fraudscan.graph.build`` runs in a fresh subprocess so its peak memory is its own. On worlds
up to ``--compare-max-persons`` the *unpruned* co-event graph (every co-admission/co-visit pair,
hub caps kept) is handed to networkx Louvain, igraph Louvain (multilevel) and igraph Leiden with
the same weights and resolution, for the speed ratio and modularity. Prints Markdown tables for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _worlds import DEFAULT_ROOT, peak_rss_mib, world


def compare_unpruned(path: str) -> dict:
    """Louvain and Leiden, igraph vs networkx, on the same *unpruned* co-event graph.

    Every co-admission / co-visit person pair (hub caps kept, no recurrence or weight pruning),
    one weighted edge per pair, the same weights and resolution for all: igraph Louvain
    (``community_multilevel``), igraph's own Leiden (``community_leiden``, modularity, until
    stable), leidenalg's Leiden as ``fraudscan.graph`` runs it (RBConfiguration, until stable)
    and with 2 iterations, and networkx ``louvain_communities``. Modularity of each partition
    is computed by igraph with the same weights and resolution; wall and CPU seconds (the
    machine is shared). Conversion to networkx is timed separately.
    """
    import networkx as nx

    import fraudscan.graph as fg
    from fraudscan.graph.communities import leiden, simple_graph, to_networkx
    from fraudscan.graph.pairs import person_pairs
    from fraudscan.workspace import Workspace

    cfg = fg.default_config()
    res = float(cfg["communities"]["resolution"])
    with Workspace(path).connect() as con:
        con.execute("SET enable_progress_bar = false")
        t0 = time.perf_counter()
        person_pairs(con, cfg, prune=False)
        edges = con.execute("SELECT 'person' AS u_type, p1 AS u_id, 'person' AS v_type, "
                            "p2 AS v_id, kind, weight FROM _pp").df()
        pairs_s = time.perf_counter() - t0
    wg = simple_graph(edges)
    g = wg.graph
    out: dict = {"nodes": g.vcount(), "edges": g.ecount(), "pairs_s": round(pairs_s, 2),
                 "resolution": res}

    def q(membership: list[int]) -> float:
        return round(g.modularity(membership, weights="weight", resolution=res), 4)

    def timed(name: str, fn: Callable[[], list[int]]) -> None:
        w0, c0 = time.perf_counter(), time.process_time()
        membership = fn()
        out[name] = {"s": round(time.perf_counter() - w0, 3),
                     "cpu_s": round(time.process_time() - c0, 3),
                     "modularity": q(membership), "communities": len(set(membership))}

    timed("igraph_louvain",
          lambda: g.community_multilevel(weights="weight", resolution=res).membership)
    timed("igraph_leiden", lambda: g.community_leiden(
        objective_function="modularity", weights="weight", resolution=res,
        n_iterations=-1, initial_membership=None).membership)
    timed("leidenalg_2", lambda: leiden(g, {**cfg["communities"], "iterations": 2}))
    timed("leidenalg", lambda: leiden(g, cfg["communities"]))
    t0 = time.perf_counter()
    G = to_networkx(wg)
    out["to_networkx_s"] = round(time.perf_counter() - t0, 2)
    index = {k: i for i, k in enumerate(wg.nodes["key"])}

    def nx_louvain() -> list[int]:
        comms = nx.community.louvain_communities(G, weight="weight", resolution=res, seed=42)
        m = [0] * g.vcount()
        for c, members in enumerate(comms):
            for k in members:
                m[index[k]] = c
        return m

    timed("networkx_louvain", nx_louvain)
    return out


def one(path: str, compare: bool) -> dict:
    """Build the graph of one workspace; returns timings, sizes, memory and ring recovery."""
    import fraudscan.graph as fg

    t0, c0 = time.perf_counter(), time.process_time()
    res = fg.build(path)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_mib()
    _, summary = fg.evaluate_rings(path)
    out = {"build_s": round(total, 2), "build_cpu_s": round(cpu, 2), "load": os.getloadavg(),
           "timings": res.timings, "peak_rss_mib": round(peak),
           "nodes": res.nodes, "edges": res.edges, "edge_kinds": res.edge_kinds,
           "rings": len(res.rings), **{k: round(v, 3) for k, v in summary.items()}}
    if compare:
        out["unpruned"] = compare_unpruned(path)
    return out


def _leads(path: str) -> dict:
    """Run the screening models (rings are scored by their leads); in its own process."""
    import fraudscan.leads as fl

    t0, c0 = time.perf_counter(), time.process_time()
    df = fl.run(path)
    return {"leads": len(df), "leads_s": round(time.perf_counter() - t0, 1),
            "leads_cpu_s": round(time.process_time() - c0, 1),
            "leads_peak_rss_mib": round(peak_rss_mib())}


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                    help="where worlds live, as ROOT/w{persons}-s{seed} (an existing tables/ "
                         "folder there is used as is)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--leads", help=argparse.SUPPRESS)
    ap.add_argument("--no-compare", action="store_true",
                    help="skip the igraph/networkx comparison on the unpruned graph")
    ap.add_argument("--compare-max-persons", type=int, default=20_000,
                    help="compare community algorithms only on worlds up to this size "
                         "(networkx Louvain on the unpruned graph grows beyond minutes)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, not args.no_compare)))
        return
    if args.leads:
        print(json.dumps(_leads(args.leads)))
        return
    rows = []
    for n in args.persons:
        ws = world(n, args.seed, args.root)
        r = _child("--leads", str(ws.path))
        cmd = ["--one", str(ws.path)]
        if args.no_compare or n > args.compare_max_persons:
            cmd.append("--no-compare")
        r.update(_child(*cmd))
        r["persons"] = n
        rows.append(r)
        print(json.dumps(r), flush=True)
    print("\n| persons | build + communities (s) | edges / Leiden / rings (s) | peak RSS (MiB) "
          "| nodes | edges | rings | ring recall | ring purity |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["timings"]
        print(f"| {r['persons']:,} | {r['build_s']:.1f} | {t['edges']:.1f} / "
              f"{t['communities']:.2f} / {t['rings']:.1f} | {r['peak_rss_mib']:,} "
              f"| {r['nodes']:,} | {r['edges']:,} | {r['rings']} | {r['mean_recall']:.2f} "
              f"| {r['mean_purity']:.2f} |")
    cmp = [r for r in rows if "unpruned" in r]
    if cmp:
        print("\nUnpruned co-event graph, same weights and resolution:\n")
        print("| persons | nodes | edges | algorithm | wall (s) | CPU (s) | modularity "
              "| communities | networkx CPU / this CPU |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in cmp:
            u = r["unpruned"]
            nx_cpu = u["networkx_louvain"]["cpu_s"]
            for name, key in (("networkx Louvain", "networkx_louvain"),
                              ("igraph Louvain (multilevel)", "igraph_louvain"),
                              ("igraph Leiden (community_leiden)", "igraph_leiden"),
                              ("leidenalg Leiden, 2 iterations", "leidenalg_2"),
                              ("leidenalg Leiden, until stable (fraudscan)", "leidenalg")):
                a = u[key]
                ratio = (f"{nx_cpu / a['cpu_s']:.1f}x" if key != "networkx_louvain"
                         and a["cpu_s"] else "-")
                print(f"| {r['persons']:,} | {u['nodes']:,} | {u['edges']:,} | {name} "
                      f"| {a['s']:.2f} | {a['cpu_s']:.2f} | {a['modularity']:.3f} "
                      f"| {a['communities']:,} | {ratio} |")


if __name__ == "__main__":
    main()
