"""Facility model: one row per facility over the whole history in the workspace.

Inputs: the monthly facility features (means and peaks over months), settlement aggregates
computed here (volumes, money per claim and per patient, doctors, diagnoses and procedures per
claim, patient mix — the provider aggregates that carry most of the signal on claims-only data
such as the Medicare import), rule findings, screening leads and ring membership. Peer group:
facility type × level.
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
    query,
    ring_counts,
)
from fraudscan.workspace import Workspace

MONTHLY_MEAN = ("avg_los", "bed_occupancy", "cost_per_visit", "fund_share", "self_pay_share",
                "drug_share", "test_share", "consumable_share", "transfer_rate",
                "readmission_31d_rate", "findings_per_100", "findings_amount_share",
                "trace_coverage", "elderly_share", "out_of_area_share")
MONTHLY_MAX = ("bed_occupancy", "cost_per_visit_growth", "findings_per_100",
               "max_settlements_10min", "settlements_growth", "fund_growth", "trace_duplicates")

SETTLEMENT_SQL = """
WITH s AS (
    SELECT s.settlement_id, s.facility_id, s.person_id, s.attending_staff_id, s.fund_paid,
           s.total_amount, s.medical_type IN ('21', '52') AS inpatient,
           greatest(date_diff('day', CAST(s.admission_time AS DATE),
                              CAST(s.discharge_time AS DATE)), 0) AS los,
           date_diff('day', p.birth_date, CAST(s.admission_time AS DATE)) / 365.25 AS age,
           p.death_date IS NOT NULL AND p.death_date < CAST(s.discharge_time AS DATE)
               AS after_death
    FROM settlements s LEFT JOIN persons p USING (person_id)
), dx AS (SELECT settlement_id, count(*) AS n_dx FROM diagnoses GROUP BY 1),
px AS (SELECT settlement_id, count(*) AS n_px FROM procedures GROUP BY 1),
pf AS (SELECT person_id, count(DISTINCT facility_id) AS n_fac FROM settlements GROUP BY 1)
SELECT s.facility_id,
       count(*) AS claims,
       count(DISTINCT s.person_id) AS patients,
       count(*) / count(DISTINCT s.person_id) AS claims_per_patient,
       sum(s.fund_paid) AS fund_total,
       avg(s.fund_paid) AS fund_mean,
       median(s.fund_paid) AS fund_median,
       stddev_samp(s.fund_paid) AS fund_sd,
       max(s.fund_paid) AS fund_max,
       sum(s.fund_paid) / count(DISTINCT s.person_id) AS fund_per_patient,
       avg(s.total_amount) AS cost_mean,
       avg(CASE WHEN s.inpatient THEN s.los END) AS los_mean,
       max(CASE WHEN s.inpatient THEN s.los END) AS los_max,
       avg(CASE WHEN s.inpatient THEN 1.0 ELSE 0.0 END) AS inpatient_share,
       count(DISTINCT s.attending_staff_id) AS doctors,
       count(*) / greatest(count(DISTINCT s.attending_staff_id), 1) AS claims_per_doctor,
       avg(coalesce(dx.n_dx, 0)) AS dx_per_claim,
       avg(coalesce(px.n_px, 0)) AS px_per_claim,
       avg(CASE WHEN px.n_px > 0 THEN 1.0 ELSE 0.0 END) AS surgical_share,
       avg(s.age) AS age_mean,
       avg(CASE WHEN s.after_death THEN 1.0 ELSE 0.0 END) AS after_death_share,
       avg(pf.n_fac) AS patient_facilities_mean
FROM s LEFT JOIN dx USING (settlement_id) LEFT JOIN px USING (settlement_id)
LEFT JOIN pf USING (person_id)
GROUP BY 1
"""
SETTLEMENT_FEATURES = ("claims", "patients", "claims_per_patient", "fund_total", "fund_mean",
                       "fund_median", "fund_sd", "fund_max", "fund_per_patient", "cost_mean",
                       "los_mean", "los_max", "inpatient_share", "doctors",
                       "claims_per_doctor", "dx_per_claim", "px_per_claim", "surgical_share",
                       "age_mean", "after_death_share", "patient_facilities_mean")
COUNT_FEATURES = ("n_rule_findings", "n_rules", "rule_amount", "n_leads", "n_detectors",
                  "max_lead_score", "lead_amount", "n_rings", "ring_score", "ring_key_role",
                  "staff_points", "suspended_staff")
LOW_IS_RISKY = {"trace_coverage__mean"}


def monthly(ws: Workspace, until: object = None) -> pd.DataFrame:
    """Facility feature months aggregated per facility (``<col>__mean`` and ``<col>__max``).

    With ``until`` only the months ending by that day.
    """
    from fraudscan.features import FeatureError, load

    try:
        m = load(ws, "facility")
    except FeatureError:
        return pd.DataFrame(columns=["facility_id"])
    if until is not None:  # whole months only: a month is known once it has ended
        day = pd.Timestamp(until).normalize()
        last = day.to_period("M")
        if day < last.end_time.normalize():
            last -= 1
        m = m[m["period"].astype(str) <= str(last)].copy()
    m["facility_id"] = m["facility_id"].astype(str)
    g = m.groupby("facility_id")
    parts = [numeric(m, MONTHLY_MEAN).groupby(m["facility_id"]).mean().add_suffix("__mean"),
             numeric(m, MONTHLY_MAX).groupby(m["facility_id"]).max().add_suffix("__max")]
    out = pd.concat(parts, axis=1)
    out["months_active"] = g.size()
    return out.reset_index()


def staff_points(ws: Workspace, until: object = None) -> pd.DataFrame:
    """Per facility: payment-qualification points of its staff and staff not active.

    With ``until`` the statuses of that day (sanctions taking effect later are left out).
    """
    cols = ["facility_id", "qualification_status", "points_this_year"]
    if until is None:
        st = ws.read_table("staff", cols)
    else:
        from fraudscan.outcomes import statuses_as_of

        st = statuses_as_of(ws, "staff", until, cols)
    st["pts"] = pd.to_numeric(st["points_this_year"], errors="coerce").fillna(0)
    st["susp"] = (st["qualification_status"].astype(str) != "active").astype(float)
    g = st.groupby(st["facility_id"].astype(str))
    return pd.DataFrame({"staff_points": g["pts"].sum(), "suspended_staff": g["susp"].sum()}
                        ).reset_index().rename(columns={"facility_id": "id"})


def frame(ws: Workspace, sources: tuple[str, ...] = ("synthetic", "inspection", "external"),
          train_on: str = "auto", until: object = None) -> SubjectFrame:
    """One row per facility of the registry with its features and labels.

    ``until`` (a day) builds the inputs from what was known by then — settlements settled,
    feature months, findings, leads, rings and statuses — for grading a past period.
    """
    info = facility_info(ws)
    sql = SETTLEMENT_SQL
    if until is not None:
        day = pd.Timestamp(until).date().isoformat()
        sql = sql.replace("FROM settlements", "FROM (SELECT * FROM settlements WHERE "
                          f"CAST(settle_time AS DATE) <= DATE '{day}')")
    agg = query(ws, sql)
    agg["facility_id"] = agg["facility_id"].astype(str)
    df = info.merge(agg, on="facility_id", how="left").merge(monthly(ws, until),
                                                              on="facility_id", how="left")
    df = merge_counts(df, "facility_id", finding_counts(ws, "facility_id", until),
                      lead_counts(ws, "facility_id", until=until),
                      ring_counts(ws, ("facility", "pharmacy"), until),
                      staff_points(ws, until))
    month_cols = [f"{c}__mean" for c in MONTHLY_MEAN] + [f"{c}__max" for c in MONTHLY_MAX]
    cols = [*SETTLEMENT_FEATURES, *month_cols, "months_active", *COUNT_FEATURES, "level"]
    X = numeric(df, cols)
    fund = X["fund_total"].fillna(0.0)
    X["rule_amount_share"] = X["rule_amount"] / fund.where(fund > 0)
    X["lead_amount_share"] = X["lead_amount"] / fund.where(fund > 0)
    X = X.loc[:, X.notna().any()]
    ids = df["facility_id"].to_numpy()
    y, scen = attach_labels(ids, entity_labels(ws, "facility", sources), train_on)
    flagged = (df["rule_amount"].fillna(0) + df["lead_amount"].fillna(0)).to_numpy()
    stake = np.where(flagged > 0, np.minimum(flagged, fund.to_numpy()), 0.05 * fund.to_numpy())
    meta = pd.DataFrame({
        "id": ids, "name": df["facility_name"], "district": df["district"],
        "facility_type": df["facility_type"], "facility_id": ids,
        "amount_at_stake": stake, "fund_paid": fund.to_numpy(),
        "detectors": df.get("detectors", pd.Series("", index=df.index)).fillna(""),
        "ring_id": df.get("ring_id", pd.Series(None, index=df.index)),
        "agreement_status": df["agreement_status"], "scenarios": scen})
    peer = (df["facility_type"].astype(str) + "|L" + df["level"].astype(str)).to_numpy()
    directions = [-1 if c in LOW_IS_RISKY else (0 if c in ("age_mean", "level") else 1)
                  for c in X.columns]
    return SubjectFrame(kind="facility", ids=ids, X=X.reset_index(drop=True), y=y, groups=ids,
                        peer=peer, meta=meta.reset_index(drop=True), directions=directions)
