"""Claim model: one row per settlement, from the claim features of the feature pipeline.

Trained and evaluated grouped by facility (and by month where there is history) so a
facility's claims never sit on both sides of a split. Peer group: medical type × facility
level. On the pre-payment path the service scores one claim's feature dict with
:meth:`fraudscan.models.base.HybridRiskModel.score_one` (raw Booster, no SHAP).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscan.models.data import SubjectFrame, attach_labels, entity_labels, numeric, query
from fraudscan.workspace import Workspace

ID_COLUMNS = ("settlement_id", "period", "person_id", "facility_id", "staff_id",
              "medical_type", "dx_group")
TWO_SIDED = {"facility_level", "los_days", "fund_share", "fund_share_pct"}


def feature_columns(features: pd.DataFrame) -> list[str]:
    """Numeric claim features (everything but ids and peer keys)."""
    return [c for c in features.columns if c not in ID_COLUMNS]


def frame(ws: Workspace, sources: tuple[str, ...] = ("synthetic", "inspection", "external"),
          train_on: str = "auto") -> SubjectFrame:
    """One row per settlement with its features and settlement-level labels."""
    from fraudscan.features import load

    f = load(ws, "claim")
    f["settlement_id"] = f["settlement_id"].astype(str)
    # no lead = missing (not 0): at pre-payment time no lead exists yet, and the service's
    # feature dict leaves these keys out, so both mean the same to the model
    f = f.merge(claim_leads(ws), on="settlement_id", how="left")
    cols = feature_columns(f)
    X = numeric(f, cols)
    X = X.loc[:, X.notna().any()]
    ids = f["settlement_id"].astype(str).to_numpy()
    y, scen = attach_labels(ids, entity_labels(ws, "settlement", sources), train_on)
    fac = f["facility_id"].astype(str).to_numpy()
    meta = pd.DataFrame({
        "id": ids, "name": ids, "facility_id": fac,
        "person_id": f["person_id"].astype(str).to_numpy(),
        "staff_id": f["staff_id"].astype(object).to_numpy(),
        "amount_at_stake": pd.to_numeric(f["fund_paid"], errors="coerce").fillna(0).to_numpy(),
        "scenarios": scen})
    peer = (f["medical_type"].astype(str) + "|L"
            + pd.to_numeric(f["facility_level"], errors="coerce").fillna(0).astype(int)
            .astype(str)).to_numpy()
    directions = [0 if c in TWO_SIDED else 1 for c in X.columns]
    return SubjectFrame(kind="claim", ids=ids, X=X, y=y, groups=fac, peer=peer, meta=meta,
                        directions=directions, periods=f["period"].astype(str).to_numpy())


def claim_leads(ws: Workspace) -> pd.DataFrame:
    """Per settlement: screening leads that list it, detectors and the best lead score."""
    df = query(ws, """
        SELECT sid AS settlement_id, count(*) AS claim_leads,
               count(DISTINCT detector) AS claim_detectors, max(score) AS claim_lead_score
        FROM (SELECT unnest(settlement_ids) AS sid, detector, score FROM leads)
        GROUP BY 1""", needs=["leads"])
    if df is None:
        return pd.DataFrame(columns=["settlement_id", "claim_leads", "claim_detectors",
                                     "claim_lead_score"])
    df["settlement_id"] = df["settlement_id"].astype(str)
    return df


def facility_rollup(frame: SubjectFrame, risk: np.ndarray) -> pd.DataFrame:
    """Claim risk per facility: mean, top-decile mean and risk-weighted fund (model input)."""
    df = pd.DataFrame({"facility_id": frame.meta["facility_id"], "risk": risk,
                       "fund": frame.meta["amount_at_stake"]})
    g = df.groupby("facility_id")
    return pd.DataFrame({
        "claim_risk_mean": g["risk"].mean(),
        "claim_risk_p90": g["risk"].quantile(0.9),
        "claim_risk_fund": (df["risk"] * df["fund"]).groupby(df["facility_id"]).sum(),
    }).reset_index()
