"""Screening models and the collusion graph end to end on the shared 2,000-person world."""

from __future__ import annotations

import shutil

import fraudscan.graph as graph
import fraudscan.leads as leads
from fraudscan.workspace import Workspace


def test_leads_and_rings_on_small_world(small_world, tmp_path) -> None:
    # small_world is shared and read-only: work on a copy of its tables
    shutil.copytree(small_world.tables_dir, tmp_path / "w" / "tables")
    ws = Workspace(tmp_path / "w")
    df = leads.run(ws)
    runs = {r["detector"]: r for r in df.attrs["runs"]}
    assert all(r["status"] == "ok" for r in runs.values()), runs
    ev = leads.evaluate(ws, df).set_index("detector")
    labelled = ev[ev["labelled"] > 0]
    # 2,000 persons is too few for the peer-based models (DRG peers, employer bursts, weekday
    # habits of a handful of dialysis patients); most detectors must still find their cases
    assert (labelled["recall"] >= 0.8).mean() >= 0.7, ev[["labelled", "recall"]]
    assert df["score"].between(0, 1).all() and df["lead_id"].is_unique
    res = graph.build(ws)
    assert res.nodes > 0 and len(res.rings) > 0
    _, summary = graph.evaluate_rings(ws)
    if summary["injected_rings"]:
        assert summary["mean_recall"] >= 0.8 and summary["mean_purity"] >= 0.5
