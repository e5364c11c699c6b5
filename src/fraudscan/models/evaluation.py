"""Grouped cross-validation and the metrics inspectors care about.

Folds are built with :class:`~sklearn.model_selection.StratifiedGroupKFold` on the CV groups of
the frame (the responsible facility), so one facility's rows never sit in both training and
test folds; for claims a second, forward-in-time check trains on earlier months of some
facilities and tests on later months of the others. Metrics: ROC-AUC, PR-AUC (average
precision), precision and recall at the inspection budget (a share of entities or a number of
leads), recall per scenario within the budget, Brier score and calibration bins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from fraudscan.models.base import HybridRiskModel
from fraudscan.models.data import SubjectFrame

ModelFactory = Callable[[], HybridRiskModel]


def budget_size(n: int, frac: float | None = None, top: int | None = None) -> int:
    """Entities an inspection budget covers: ``top`` if given, else ``ceil(frac * n)``."""
    if top is not None:
        return max(1, min(n, int(top)))
    return max(1, min(n, math.ceil((frac or 0.05) * n)))


def oof_risk(factory: ModelFactory, frame: SubjectFrame, n_splits: int = 5,
             seed: int = 0) -> np.ndarray:
    """Out-of-fold risk for every labelled row (NaN elsewhere), grouped by ``frame.groups``."""
    lab = np.flatnonzero(frame.labelled)
    out = np.full(len(frame), np.nan)
    y = frame.y[lab].astype(int)
    groups = frame.groups[lab]
    n_groups = len(np.unique(groups))
    k = min(n_splits, n_groups, max(2, int(min(np.bincount(y, minlength=2)))))
    if k < 2 or len(np.unique(y)) < 2:
        m = factory().fit(frame.X.to_numpy()[lab], y, peer_groups=frame.peer[lab])
        out[lab] = m.risk(frame.X.to_numpy()[lab], frame.peer[lab])
        return out
    X = frame.X.to_numpy()
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for tr, te in cv.split(X[lab], y, groups):
        m = factory().fit(X[lab][tr], y[tr], peer_groups=frame.peer[lab][tr],
                          feature_names=list(frame.X.columns))
        out[lab[te]] = m.risk(X[lab][te], frame.peer[lab][te])
    return out


def time_holdout_risk(factory: ModelFactory, frame: SubjectFrame, test_share: float = 0.3,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train on the earlier months of ~70 % of facilities, test on later months of the rest.

    Returns (risk, test mask); needs ``frame.periods``.
    """
    if frame.periods is None:
        raise ValueError("time holdout needs periods")
    months = np.sort(np.unique(frame.periods))
    cut = months[int(len(months) * (1 - test_share))] if len(months) > 1 else months[-1]
    rng = np.random.default_rng(seed)
    fac = np.unique(frame.groups)
    test_fac = set(rng.choice(fac, size=max(1, int(len(fac) * test_share)), replace=False))
    in_test_fac = np.array([g in test_fac for g in frame.groups])
    train = frame.labelled & ~in_test_fac & (frame.periods < cut)
    test = frame.labelled & in_test_fac & (frame.periods >= cut)
    X = frame.X.to_numpy()
    m = factory().fit(X[train], frame.y[train].astype(int), peer_groups=frame.peer[train],
                      feature_names=list(frame.X.columns))
    risk = np.full(len(frame), np.nan)
    risk[test] = m.risk(X[test], frame.peer[test])
    return risk, test


def metrics(y: np.ndarray, score: np.ndarray, *, budget_frac: float | None = 0.05,
            budget_top: int | None = None) -> dict[str, float]:
    """ROC-AUC, PR-AUC, precision/recall at the budget, Brier and expected calibration error."""
    ok = ~np.isnan(y) & ~np.isnan(score)
    y, s = y[ok].astype(int), score[ok]
    n = len(y)
    res: dict[str, float] = {"n": float(n), "positives": float(y.sum()),
                             "base_rate": float(y.mean()) if n else float("nan")}
    if n == 0:
        return res
    k = budget_size(n, budget_frac, budget_top)
    top = np.argsort(-s, kind="stable")[:k]
    res.update({"budget": float(k), "precision_at_budget": float(y[top].mean()),
                "recall_at_budget": float(y[top].sum() / max(y.sum(), 1))})
    if 0 < y.sum() < n:
        res["roc_auc"] = float(roc_auc_score(y, s))
        res["pr_auc"] = float(average_precision_score(y, s))
    res["brier"] = float(brier_score_loss(y, np.clip(s, 0, 1)))
    res["ece"] = float(calibration(y, s)["gap"].abs().mul(calibration(y, s)["n"]).sum() / n)
    return res


def calibration(y: np.ndarray, score: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Reliability table: mean predicted risk and observed fraud rate per risk decile."""
    s = np.clip(score, 0, 1)
    idx = np.minimum((s * bins).astype(int), bins - 1)
    df = pd.DataFrame({"bin": idx, "pred": s, "obs": y})
    t = df.groupby("bin").agg(n=("obs", "size"), predicted=("pred", "mean"),
                              observed=("obs", "mean")).reset_index()
    t["gap"] = t["predicted"] - t["observed"]
    return t


def scenario_recall(frame: SubjectFrame, score: np.ndarray, k: int) -> dict[str, float]:
    """Per scenario: share of its labelled entities within the top ``k`` by score."""
    s = np.where(np.isnan(score), -np.inf, score)
    top = set(np.argsort(-s, kind="stable")[:k])
    out: dict[str, list[int]] = {}
    for i, scen in enumerate(frame.meta["scenarios"]):
        for sc in filter(None, str(scen).split(";")):
            out.setdefault(sc, []).append(int(i in top))
    return {sc: float(np.mean(v)) for sc, v in sorted(out.items())}


def evaluate_frame(factory: ModelFactory, frame: SubjectFrame, *, n_splits: int = 5,
                   budget_frac: float | None = 0.05, budget_top: int | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """Grouped out-of-fold metrics, per-scenario recall and the no-label baseline."""
    risk = oof_risk(factory, frame, n_splits=n_splits, seed=seed)
    res: dict[str, Any] = {"oof": metrics(frame.y, risk, budget_frac=budget_frac,
                                          budget_top=budget_top)}
    lab = frame.labelled
    k = budget_size(int(lab.sum()), budget_frac, budget_top)
    sub = frame.subset(lab)
    res["scenario_recall"] = scenario_recall(sub, risk[lab], k)
    unsup = HybridRiskModel(min_positives=10**9).fit(
        frame.X.to_numpy(), np.zeros(len(frame), int), peer_groups=frame.peer)
    u = unsup.risk(frame.X.to_numpy(), frame.peer)
    res["unsupervised"] = metrics(frame.y, u, budget_frac=budget_frac, budget_top=budget_top)
    res["risk"] = risk
    if frame.periods is not None and len(np.unique(frame.periods)) > 2:
        tr, test = time_holdout_risk(factory, frame, seed=seed)
        res["time_holdout"] = metrics(np.where(test, frame.y, np.nan), tr,
                                      budget_frac=budget_frac, budget_top=budget_top)
    return res


LIST_OF_LABEL = {"facility": "facility", "person": "person", "settlement": "claim",
                 "staff": "staff"}


def case_recall(labels: pd.DataFrame, scores: dict[str, pd.DataFrame],
                budgets: dict[str, dict[str, Any]],
                leads: pd.DataFrame | None = None, *,
                facility_via_leads: bool = False,
                score_column: str = "risk_score") -> pd.DataFrame:
    """Per scenario: share of its cases (``group_id``) an inspector reaches within budget.

    The inspection lists are the top of each subject's ranking by risk (top 5 % of
    facilities and staff, top 200 persons and claims by default); a case is reached when any
    of its labelled facilities, persons, settlements or staff is on the matching list, or
    is touched by one of the ``leads`` given — the inspection budget for leads,
    :func:`fraudscan.suspects.ranked_leads` with its default budget (a quota per screening
    model). A lead touches its subject and its settlements; it touches its facility only when
    the facility is the subject (a claim lead sends the inspector to that claim, not to
    every case the facility hosts). ``facility_via_leads=True`` restores the looser reading
    (any lead at a facility reaches every case labelled on that facility).
    ``score_column="oof_risk"`` ranks by out-of-fold risk where there is one (the honest
    reading: no entity is ranked by a model that saw its own label).
    """
    top: dict[str, set[str]] = {}
    for kind, sc in scores.items():
        if kind not in budgets or sc.empty:
            continue
        k = budget_size(len(sc), budgets[kind].get("budget_frac"),
                        budgets[kind].get("budget_top"))
        r = sc["risk_score"].astype(float)
        if score_column != "risk_score" and score_column in sc.columns:
            r = sc[score_column].astype(float).where(sc[score_column].notna(), r)
        top[kind] = set(sc.assign(_r=r).sort_values("_r", ascending=False, kind="stable")
                        .head(k)["id"].astype(str))
    touched: set[tuple[str, str]] = set()
    if leads is not None:
        for r in leads.itertuples(index=False):
            touched.add((str(r.subject_type), str(r.subject_id)))
            if facility_via_leads and isinstance(r.facility_id, str):
                touched.add(("facility", r.facility_id))
            if r.settlement_ids is not None:
                touched.update(("settlement", str(x)) for x in r.settlement_ids)
    lab = labels[labels["is_fraud"].astype(bool) & labels["group_id"].notna()
                 & labels["entity_type"].isin(list(LIST_OF_LABEL))]
    rows = []
    for scen, g in lab.groupby("scenario"):
        cases = found = 0
        for _, c in g.groupby("group_id"):
            cases += 1
            found += any(str(e) in top.get(LIST_OF_LABEL[t], set()) or (t, str(e)) in touched
                         for t, e in zip(c["entity_type"], c["entity_id"], strict=True))
        rows.append({"scenario": scen, "cases": cases, "reached": found,
                     "recall": found / cases if cases else float("nan")})
    return pd.DataFrame(rows, columns=["scenario", "cases", "reached", "recall"])
