"""Collusion graphs (BRIEF §2.2 M22): who meets whom, and which groups act together.

>>> import fraudscan.graph as graph
>>> result = graph.build("W")                 # edges in SQL, Leiden communities, scored rings
>>> result.rings.head()                       # also the DuckDB tables rings / ring_members
>>> G = graph.ring_graph("W", "R00001")       # one ring as a networkx.Graph
>>> M = graph.build_graph("W")                # the whole pruned graph as a networkx.MultiGraph

Pairs are built set-wise in DuckDB (:mod:`fraudscan.graph.pairs`), communities found with
Leiden via igraph (:mod:`fraudscan.graph.communities`) on the evidence edges (co-admission,
co-visit, resale chains), doctors, institutions, villages and employers the community
concentrates on are attached, and rings are scored with the ring-level features of BRIEF §2.4
(:mod:`fraudscan.graph.rings`). networkx is the interface: every ring,
and the whole graph, is available as a networkx graph with ``node_type``, ``node_id``, ``role``
node attributes and ``kind``/``weight``/``events`` edge attributes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import pandas as pd

from fraudscan.errors import FraudscanError
from fraudscan.graph.communities import leiden, simple_graph, to_networkx
from fraudscan.graph.pairs import build_edges
from fraudscan.graph.rings import assemble, attach, score_rings
from fraudscan.leads.config import load_config, packaged_yaml
from fraudscan.workspace import Workspace

__all__ = [
    "GraphResult",
    "build",
    "build_graph",
    "default_config",
    "evaluate_rings",
    "read_ring_members",
    "read_rings",
    "ring_graph",
    "to_networkx",
]


class GraphError(FraudscanError):
    """The graph has not been built, or a ring does not exist."""


@dataclass
class GraphResult:
    """What :func:`build` produced: rings, members, graph size and the seconds each step took."""

    rings: pd.DataFrame
    members: pd.DataFrame
    nodes: int
    edges: int
    edge_kinds: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)


def default_config() -> dict[str, Any]:
    """The packaged graph settings (``fraudscan/graph/config.yaml``)."""
    return packaged_yaml("fraudscan.graph", "config.yaml")


def _ws(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    return ws.require()


def build(
    workspace: Workspace | str | os.PathLike[str],
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> GraphResult:
    """Build edges, find Leiden communities and store scored rings in the workspace DuckDB.

    Writes ``graph_edges``, ``graph_co_settlements``, ``rings`` and ``ring_members``. Run the
    screening models first (``fraudscan leads``) so rings can be scored by their members' leads;
    ``rule_findings`` is used when present.
    """
    ws = _ws(workspace)
    cfg = load_config(config, base=default_config())
    t: dict[str, float] = {}
    with ws.connect() as con:
        con.execute("SET enable_progress_bar = false")  # the CLI draws its own
        t0 = time.perf_counter()
        has_trace = ws.has_table("trace_scans") and ws.has_table("fee_lines")
        kinds = build_edges(con, cfg, has_trace=has_trace)
        t["edges"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        kinds_used = list(cfg["communities"]["edge_kinds"])
        edges = con.execute("SELECT * FROM graph_edges WHERE list_contains(?, kind)",
                            [kinds_used]).df()
        wg = simple_graph(edges)
        t["load"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        membership = leiden(wg.graph, cfg["communities"])
        t["communities"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats, members = assemble(wg, membership, cfg)
        t["roles"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        members = attach(con, members, cfg)
        t["attach"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rings, members = score_rings(con, stats, members, cfg)
        t["rings"] = time.perf_counter() - t0
    return GraphResult(rings=rings, members=members, nodes=wg.graph.vcount(),
                       edges=wg.graph.ecount(), edge_kinds=kinds,
                       timings={k: round(v, 3) for k, v in t.items()})


def _require_table(con: Any, name: str) -> None:
    n = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
                    "AND database_name = current_database()", [name]).fetchone()[0]
    if not n:
        raise GraphError(f"no {name} table: run `fraudscan graph build` first")


def read_rings(workspace: Workspace | str | os.PathLike[str]) -> pd.DataFrame:
    """The stored ``rings`` table, best-scored first."""
    with _ws(workspace).connect() as con:
        _require_table(con, "rings")
        return con.execute("SELECT * FROM rings ORDER BY score DESC, ring_id").df()


def read_ring_members(workspace: Workspace | str | os.PathLike[str],
                      ring_id: str | None = None) -> pd.DataFrame:
    """The stored ``ring_members`` (of one ring when ``ring_id`` is given)."""
    with _ws(workspace).connect() as con:
        _require_table(con, "ring_members")
        where, params = ("WHERE ring_id = ?", [ring_id]) if ring_id else ("", [])
        df = con.execute(f"SELECT * FROM ring_members {where} "
                         "ORDER BY ring_id, strength DESC, node_type, node_id", params).df()
    if ring_id and df.empty:
        raise GraphError(f"no ring {ring_id!r}")
    return df


def _edges_query(where: str = "") -> str:
    return f"SELECT u_type, u_id, v_type, v_id, kind, weight, events FROM graph_edges {where}"


def ring_graph(workspace: Workspace | str | os.PathLike[str], ring_id: str) -> nx.Graph:
    """One ring as a ``networkx.Graph``: members with roles, edges among them (kinds merged).

    Nodes are keyed ``type:id``; edge ``weight`` sums the kinds, ``kinds`` lists them.
    """
    members = read_ring_members(workspace, ring_id)
    with _ws(workspace).connect() as con:
        con.register("_rm", members)
        edges = con.execute(_edges_query(
            "e WHERE EXISTS (SELECT 1 FROM _rm a WHERE a.node_type = e.u_type AND "
            "a.node_id = e.u_id) AND EXISTS (SELECT 1 FROM _rm b WHERE b.node_type = e.v_type "
            "AND b.node_id = e.v_id)")).df()
        con.unregister("_rm")
    G = nx.Graph(ring_id=ring_id)
    for r in members.itertuples(index=False):
        G.add_node(f"{r.node_type}:{r.node_id}", node_type=r.node_type, node_id=r.node_id,
                   role=r.role, degree=int(r.degree), strength=float(r.strength))
    for e in edges.itertuples(index=False):
        u, v = f"{e.u_type}:{e.u_id}", f"{e.v_type}:{e.v_id}"
        if G.has_edge(u, v):
            G[u][v]["weight"] += float(e.weight)
            G[u][v]["kinds"].append(e.kind)
        else:
            G.add_edge(u, v, weight=float(e.weight), kinds=[e.kind], events=int(e.events))
    return G


def build_graph(workspace: Workspace | str | os.PathLike[str]) -> nx.MultiGraph:
    """The whole pruned graph as a ``networkx.MultiGraph`` (one edge per kind, keyed by kind).

    Nodes carry ``node_type``/``node_id`` and, for ring members, ``ring_id`` and ``role``.
    """
    ws = _ws(workspace)
    with ws.connect() as con:
        _require_table(con, "graph_edges")
        edges = con.execute(_edges_query()).df()
        members = con.execute("SELECT * FROM ring_members").df() if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ring_members' "
            "AND database_name = current_database()").fetchone()[0] else pd.DataFrame()
    M = nx.MultiGraph()
    for e in edges.itertuples(index=False):
        u, v = f"{e.u_type}:{e.u_id}", f"{e.v_type}:{e.v_id}"
        for key, t, i in ((u, e.u_type, e.u_id), (v, e.v_type, e.v_id)):
            if key not in M:
                M.add_node(key, node_type=t, node_id=i)
        M.add_edge(u, v, key=e.kind, kind=e.kind, weight=float(e.weight), events=int(e.events))
    for r in members.itertuples(index=False):
        key = f"{r.node_type}:{r.node_id}"
        if key in M:
            M.nodes[key].update(ring_id=r.ring_id, role=r.role)
    return M


def evaluate_rings(workspace: Workspace | str | os.PathLike[str],
                   min_recall: float = 0.5) -> tuple[pd.DataFrame, dict[str, float]]:
    """Match injected rings (``labels`` scenario ``collusion_ring``) to detected rings.

    Labelled members are the persons, staff and facilities sharing a ``group_id`` (claims are
    evidence, not members); for each injected ring
    the detected ring with the largest overlap is its match. Recall = overlap / labelled
    members; purity = overlap / the match's members of labelable types (person, staff,
    facility incl. pharmacy). Returns one row per injected ring and the means, plus the share
    of rings recovered (recall >= ``min_recall``).
    """
    ws = _ws(workspace)
    labels = ws.read_table("labels")
    lab = labels[(labels["scenario"] == "collusion_ring") & labels["is_fraud"].astype(bool)
                 & labels["entity_type"].isin(["person", "staff", "facility"])
                 & labels["group_id"].notna()]
    members = read_ring_members(ws)
    members = members.assign(
        etype=members["node_type"].replace({"pharmacy": "facility"}))
    members = members[members["etype"].isin(["person", "staff", "facility"])]
    by_ring = {r: set(zip(g["etype"], g["node_id"].astype(str), strict=True))
               for r, g in members.groupby("ring_id")}
    rows = []
    for gid, g in lab.groupby("group_id"):
        truth = set(zip(g["entity_type"], g["entity_id"].astype(str), strict=True))
        best, overlap = None, 0
        for rid, mem in by_ring.items():
            k = len(truth & mem)
            if k > overlap:
                best, overlap = rid, k
        size = len(by_ring[best]) if best else 0
        rows.append({"group_id": gid, "labelled_members": len(truth), "matched_ring": best,
                     "overlap": overlap, "ring_members": size,
                     "recall": overlap / len(truth) if truth else 0.0,
                     "purity": overlap / size if size else 0.0})
    per = pd.DataFrame(rows, columns=["group_id", "labelled_members", "matched_ring", "overlap",
                                      "ring_members", "recall", "purity"])
    summary = {
        "injected_rings": float(len(per)),
        "mean_recall": float(per["recall"].mean()) if len(per) else float("nan"),
        "mean_purity": float(per["purity"].mean()) if len(per) else float("nan"),
        "rings_recovered": float((per["recall"] >= min_recall).mean()) if len(per)
        else float("nan"),
    }
    return per, summary
