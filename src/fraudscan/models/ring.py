"""Collusion-ring model (the "+1"): ranks the rings found by :mod:`fraudscan.graph`.

Inputs are the ring features the graph step computes (size, density, synchrony, shares of
members with rule findings or leads, money, institution overlap). A detected ring is a positive
when it recovers at least half the labelled members of a labelled ring (``labels`` rows sharing
a ``group_id``, or ring outcomes recorded by inspectors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscan.models.data import SubjectFrame, entity_labels, query
from fraudscan.workspace import Workspace

FEATURES = ("size", "persons", "staff", "facilities", "pharmacies", "groups", "edges",
            "density", "synchrony", "rule_hit_share", "lead_share", "flagged_share", "amount",
            "institution_overlap", "top_facility_share", "score")
MIN_RECALL = 0.5


def ring_truth(ws: Workspace, sources: tuple[str, ...]) -> dict[str, str]:
    """Detected ring id → labelled group it recovers (recall >= 0.5 of its members)."""
    from fraudscan.models.data import query as q

    if "synthetic" not in sources and "external" not in sources:
        return {}
    lab = ws.read_table("labels")
    lab = lab[lab["source"].isin(list(sources)) & lab["is_fraud"].astype(bool)
              & (lab["scenario"] == "collusion_ring")
              & lab["entity_type"].isin(["person", "staff", "facility"])
              & lab["group_id"].notna()]
    mem = q(ws, "SELECT ring_id, node_type, node_id FROM ring_members",
            needs=["ring_members"])
    if mem is None or lab.empty:
        return {}
    mem["etype"] = mem["node_type"].replace({"pharmacy": "facility"})
    by_ring = {r: set(zip(g["etype"], g["node_id"].astype(str), strict=True))
               for r, g in mem.groupby("ring_id")}
    out: dict[str, str] = {}
    for gid, g in lab.groupby("group_id"):
        truth = set(zip(g["entity_type"], g["entity_id"].astype(str), strict=True))
        for rid, m in by_ring.items():
            if len(truth & m) >= MIN_RECALL * len(truth):
                out.setdefault(rid, str(gid))
    return out


def frame(ws: Workspace, sources: tuple[str, ...] = ("synthetic", "inspection", "external"),
          train_on: str = "auto") -> SubjectFrame:
    """One row per detected ring (empty frame when the graph step has not run)."""
    rings = query(ws, "SELECT * FROM rings ORDER BY ring_id", needs=["rings"])
    if rings is None:
        rings = pd.DataFrame(columns=["ring_id", "top_facility", *FEATURES])
    ids = rings["ring_id"].astype(str).to_numpy()
    X = pd.DataFrame({c: pd.to_numeric(rings[c], errors="coerce").astype(float)
                      for c in FEATURES})
    truth = ring_truth(ws, sources)
    y = np.array([1.0 if r in truth else 0.0 for r in ids])
    insp = entity_labels(ws, "ring", ("inspection",)).set_index("entity_id")
    for i, r in enumerate(ids):
        if r in insp.index:
            y[i] = 1.0 if bool(insp.loc[r, "is_fraud"]) else 0.0
    has_truth = bool(truth) or len(insp) > 0
    if not has_truth and train_on == "labelled":
        y[:] = np.nan
    fac = rings["top_facility"].astype(str).to_numpy()
    district = query(ws, "SELECT facility_id, district FROM facilities")
    dmap = dict(zip(district["facility_id"].astype(str), district["district"], strict=True))
    meta = pd.DataFrame({
        "id": ids, "name": [f"{r} ({int(s)} members)" for r, s in
                            zip(ids, X["size"].fillna(0), strict=True)],
        "district": [dmap.get(f, "") or "" for f in fac], "facility_type": "",
        "facility_id": fac, "amount_at_stake": X["amount"].fillna(0).to_numpy(),
        "fund_paid": X["amount"].fillna(0).to_numpy(), "detectors": "",
        "ring_id": ids, "scenarios": ["collusion_ring" if r in truth else "" for r in ids]})
    directions = [0 if c in ("size", "persons") else 1 for c in FEATURES]
    return SubjectFrame(kind="ring", ids=ids, X=X, y=y, groups=fac,
                        peer=np.full(len(ids), "ring", dtype=object), meta=meta,
                        directions=directions)
