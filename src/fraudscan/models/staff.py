"""Staff model: doctors and pharmacists ranked for payment-qualification follow-up.

Not one of the 3+1 models but the same estimator: monthly staff features (peaks and means),
rule findings and leads naming the staff member, rings, and current points. Peer group: role ×
department.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscan.models.data import (
    SubjectFrame,
    attach_labels,
    entity_labels,
    facility_info,
    finding_counts,
    lead_counts,
    merge_counts,
    numeric,
    ring_counts,
)
from fraudscan.workspace import Workspace

MONTHLY = ("n_settlements", "n_patients", "fund_paid", "fund_per_patient", "n_orders",
           "n_findings", "findings_per_100_orders", "item_similarity", "restricted_drug_share")
COUNTS = ("n_leads", "max_lead_score", "lead_amount", "n_rule_findings", "n_rules",
          "rule_amount", "n_rings", "ring_score", "points_this_year")


def frame(ws: Workspace, sources: tuple[str, ...] = ("synthetic", "inspection", "external"),
          train_on: str = "auto") -> SubjectFrame:
    """One row per staff member of the registry."""
    from fraudscan.features import FeatureError, load

    st = ws.read_table("staff")
    st["staff_id"] = st["staff_id"].astype(str)
    st["facility_id"] = st["facility_id"].astype(str)
    try:
        f = load(ws, "staff")
        f["staff_id"] = f["staff_id"].astype(str)
        num = numeric(f, MONTHLY)
        agg = pd.concat([num.groupby(f["staff_id"]).max().add_suffix("__max"),
                         num.groupby(f["staff_id"]).mean().add_suffix("__mean")], axis=1)
        st = st.merge(agg.reset_index(), on="staff_id", how="left")
    except FeatureError:
        pass
    st = merge_counts(st, "staff_id", finding_counts(ws, "staff_id"),
                      lead_counts(ws, "subject_id", "staff"), ring_counts(ws, ("staff",)))
    mcols = [c for c in st.columns if c.endswith(("__max", "__mean"))]
    X = numeric(st, [*mcols, *COUNTS])
    X = X.loc[:, X.notna().any()]
    ids = st["staff_id"].to_numpy()
    y, scen = attach_labels(ids, entity_labels(ws, "staff", sources), train_on)
    info = facility_info(ws).set_index("facility_id").reindex(st["facility_id"])
    fund = pd.to_numeric(st.get("fund_paid__mean"), errors="coerce").fillna(0).to_numpy() * \
        pd.to_numeric(st.get("n_settlements__max"), errors="coerce").notna().to_numpy()
    flagged = (st["rule_amount"] + st["lead_amount"]).to_numpy()
    meta = pd.DataFrame({
        "id": ids, "name": ids + " (" + st["role"].astype(str) + ")",
        "district": info["district"].fillna("").to_numpy(),
        "facility_type": info["facility_type"].fillna("").to_numpy(),
        "facility_id": st["facility_id"].to_numpy(),
        "amount_at_stake": np.where(flagged > 0, flagged, 0.05 * fund), "fund_paid": fund,
        "detectors": st["detectors"].fillna("").to_numpy(), "ring_id": st["ring_id"].to_numpy(),
        "qualification_status": st["qualification_status"].astype(str).to_numpy(),
        "scenarios": scen})
    peer = (st["role"].astype(str) + "|" + st["department"].astype(str)).to_numpy()
    return SubjectFrame(kind="staff", ids=ids, X=X, y=y, groups=st["facility_id"].to_numpy(),
                        peer=peer, meta=meta, directions=[1] * X.shape[1])
