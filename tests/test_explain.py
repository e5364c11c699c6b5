"""Reasons an inspector can verify: labels for every model feature, no false "above P95"."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscan.models.base import HybridRiskModel
from fraudscan.models.explain import LABELS, explain, label, sentence


def _model_features() -> dict[str, list[str]]:
    """Every feature each model can use (candidate lists; a trained model uses a subset)."""
    from fraudscan.features.engine import load_models
    from fraudscan.models import claim, facility, person, ring, staff

    sql = {m.subject: m for m in load_models() if m.is_output}
    rollup_cols = list(claim.facility_rollup(
        type("F", (), {"meta": pd.DataFrame({"facility_id": ["H1"],
                                             "amount_at_stake": [1.0]})})(),
        np.array([0.5])).columns.drop("facility_id"))
    return {
        "claim": [c for c in sql["claim"].output_columns() if c not in claim.ID_COLUMNS]
        + ["claim_leads", "claim_detectors", "claim_lead_score"],
        "facility": [*facility.SETTLEMENT_FEATURES,
                     *(f"{c}__mean" for c in facility.MONTHLY_MEAN),
                     *(f"{c}__max" for c in facility.MONTHLY_MAX), "months_active",
                     *facility.COUNT_FEATURES, "level", "rule_amount_share",
                     "lead_amount_share", *rollup_cols],
        "person": [*person.PEAKS, "months_active", "age_years", *person.COUNTS],
        "staff": [*(f"{c}__{a}" for c in staff.MONTHLY for a in ("max", "mean")),
                  *staff.COUNTS],
        "ring": list(ring.FEATURES),
    }


def test_every_model_feature_has_a_zh_and_en_label() -> None:
    missing = {k: [f for f in fs if label(f) is None or not label(f).zh or not label(f).en]
               for k, fs in _model_features().items()}
    assert not any(missing.values()), missing
    for f in ("avg_los__mean", "share_drug_pct", "n_orders__max"):
        assert label(f).zh != f and "_" not in label(f).zh


def test_labels_file_is_well_formed() -> None:
    assert all(lab.kind in ("num", "pct", "flag") for lab in LABELS.values())
    assert LABELS["avg_los"].zh == "平均住院日"


def _fitted(seed: int = 0) -> tuple[HybridRiskModel, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 400
    X = pd.DataFrame({"avg_los": rng.gamma(4, 2, n), "drug_share": rng.beta(2, 5, n),
                      "trace_coverage": rng.beta(8, 2, n), "n_leads": rng.poisson(1, n),
                      "readmit_31d": (rng.random(n) < 0.03).astype(float)})
    y = ((X["avg_los"] > 12) | (X["trace_coverage"] < 0.5) | (X["n_leads"] > 3)).astype(int)
    peer = np.where(rng.random(n) < 0.5, "A", "B")
    m = HybridRiskModel(n_estimators=40, directions=[1, 1, -1, 1, 1]).fit(
        X.to_numpy(), y.to_numpy(), peer_groups=peer, feature_names=list(X.columns))
    return m, X, peer


def test_reasons_never_claim_above_p95_for_a_value_below_it() -> None:
    m, X, peer = _fitted()
    reasons = explain(m, X, peer, "facility", top=5)
    d = dict(zip(m.feature_names_, m.outlier_.directions_, strict=True))
    n_above = n_median = 0
    for rs in reasons:
        for r in rs:
            claims_above = "，超过" in r.zh or "不足 5%" in r.zh  # flags: "under 5% of peers"
            assert claims_above == (r.basis == "above_p95"), r
            if claims_above:
                n_above += 1
                assert r.value > r.peer_p95 and d[r.feature] >= 0, r
            else:
                n_median += 1
                assert "未超过" in r.zh or "低于" in r.zh or "：" in r.zh, r
                # cited only on the risky side of the peer median
                if d[r.feature] > 0:
                    assert r.value > r.peer_median, r
                if d[r.feature] < 0:
                    assert r.value < r.peer_median, r
            assert r.contribution > 0
            assert "_" not in r.zh, r.zh
    assert n_above > 0 and n_median > 0
    # the rows with the most above-P95 reasons come from the riskiest rows
    assert sum(len(rs) for rs in reasons) > 0


def test_sentence_states_the_true_relation() -> None:
    zh, en = sentence("avg_los", 8.0, 9.1, "facility", median=6.0)
    assert "未超过 P95（9.1天）" in zh and "高于同级同类机构中位数（6天）" in zh
    assert "not above the P95 of peer facilities" in en
    zh, en = sentence("avg_los", 14.2, 9.1, "facility", median=6.0)
    assert zh == "平均住院日 14.2天，超过同级同类机构 P95（9.1天）"
    assert en == "Average length of stay 14.2 days, above the P95 of peer facilities (9.1 days)"
    # float noise is not "above", and close numbers print differently
    zh, _ = sentence("fund_share__mean", 0.6999999, 0.6999998, "facility", median=0.5)
    assert "未超过" in zh
    zh, _ = sentence("avg_los", 9.14, 9.11, "facility")
    assert "9.14" in zh and "9.11" in zh
    zh, en = sentence("trace_coverage", 0.4, 0.99, "facility", median=0.9)
    assert zh == "追溯码扫码率 40.0%，低于同级同类机构中位数（90.0%）"
    zh, en = sentence("readmit_31d", 1.0, 0.0, "claim", median=0.0)
    assert zh.startswith("31天内再入院：是") and en.startswith("Readmission within 31 days: yes")
