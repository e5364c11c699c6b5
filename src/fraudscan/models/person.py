"""Person model: one row per insured person with activity, from the monthly person features.

Peaks over months (the month a person stockpiled or shopped around counts), screening leads and
rule findings naming the person, and ring membership. Peer group: insurance type × age band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscan.models.data import (
    SubjectFrame,
    attach_labels,
    entity_labels,
    finding_counts,
    lead_counts,
    merge_counts,
    numeric,
    query,
    ring_counts,
)
from fraudscan.workspace import Workspace

PEAKS = ("visits_30d", "visits_90d", "visits_365d", "facilities_30d", "facilities_90d",
         "facilities_365d", "pharmacies_30d", "pharmacies_90d", "pharmacies_365d", "fund_365d",
         "possession_ratio_90d", "drug_amount", "resale_drug_share", "patent_tcm_amount",
         "patent_tcm_share", "covisit_max_days", "covisit_partners")
COUNTS = ("n_leads", "n_detectors", "max_lead_score", "lead_amount", "n_rule_findings",
          "n_rules", "rule_amount", "n_rings", "ring_score", "ring_key_role")


def frame(ws: Workspace, sources: tuple[str, ...] = ("synthetic", "inspection", "external"),
          train_on: str = "auto") -> SubjectFrame:
    """One row per person with at least one settlement."""
    from fraudscan.features import load

    f = load(ws, "person")
    f["person_id"] = f["person_id"].astype(str)
    g = numeric(f, PEAKS).groupby(f["person_id"])
    df = g.max()
    df["months_active"] = g.size()
    first = f.groupby("person_id")[["insurance_type", "age_years"]].last()
    df = df.join(first).reset_index()
    home = query(ws, """SELECT s.person_id, arg_max(s.facility_id, s.fund_paid) AS facility_id,
                               any_value(p.district) AS district, sum(s.fund_paid) AS fund
                        FROM settlements s LEFT JOIN persons p USING (person_id) GROUP BY 1""")
    home["person_id"] = home["person_id"].astype(str)
    df = df.merge(home, on="person_id", how="left")
    df = merge_counts(df, "person_id", lead_counts(ws, "subject_id", "person"),
                      finding_counts(ws, "person_id"), ring_counts(ws, ("person",)))
    X = numeric(df, [*PEAKS, "months_active", "age_years", *COUNTS])
    X = X.loc[:, X.notna().any()]
    ids = df["person_id"].to_numpy()
    y, scen = attach_labels(ids, entity_labels(ws, "person", sources), train_on)
    fund = pd.to_numeric(df["fund"], errors="coerce").fillna(0.0).to_numpy()
    flagged = (df["rule_amount"] + df["lead_amount"]).to_numpy()
    meta = pd.DataFrame({
        "id": ids, "name": ids, "district": df["district"].fillna(""),
        "facility_id": df["facility_id"].astype(str), "facility_type": "",
        "amount_at_stake": np.where(flagged > 0, np.minimum(flagged, fund), 0.05 * fund),
        "fund_paid": fund, "detectors": df["detectors"].fillna(""),
        "ring_id": df["ring_id"], "scenarios": scen})
    age = pd.to_numeric(df["age_years"], errors="coerce").fillna(-10)
    band = np.select([age < 18, age < 60, age >= 60], ["child", "adult", "senior"], "unknown")
    peer = (df["insurance_type"].astype(str) + "|" + band).to_numpy()
    directions = [0 if c == "age_years" else 1 for c in X.columns]
    return SubjectFrame(kind="person", ids=ids, X=X, y=y, groups=meta["facility_id"].to_numpy(),
                        peer=peer, meta=meta, directions=directions)
