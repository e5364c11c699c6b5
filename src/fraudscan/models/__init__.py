"""The "3+1" models — claim, facility, person and collusion ring — plus a staff model.

>>> from fraudscan.models import train_all, load_model, score_claim
>>> result = train_all("W")                 # evaluate (grouped CV), fit, log to MLflow, register
>>> result.metrics["facility"]["oof"]["pr_auc"]
>>> model = load_model("W", "claim")       # the fitted HybridRiskModel kept in the workspace
>>> score_claim(model, claim_feature_dict)  # one claim on the pre-payment path (raw Booster)

Each subject model is a :class:`~fraudscan.models.base.HybridRiskModel` (LightGBM on labels +
peer-outlier score) so it ranks with no labels and improves as inspection outcomes arrive.
Models, scores and metrics are kept in ``W/models/`` (what suspect lists and grading read) and
logged to MLflow (:mod:`fraudscan.models.tracking`) with the ``champion`` alias the service
loads. The facility model takes the claim model's out-of-fold risk per facility as input.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from fraudscan.models import claim, facility, person, ring, staff
from fraudscan.models.base import HybridRiskModel, PeerOutlierScorer
from fraudscan.models.data import ALL_SOURCES, SubjectFrame
from fraudscan.models.evaluation import budget_size, evaluate_frame, metrics
from fraudscan.workspace import Workspace

__all__ = [
    "SUBJECTS",
    "HybridRiskModel",
    "PeerOutlierScorer",
    "TrainResult",
    "build_frame",
    "explain_lead",
    "load_model",
    "read_inputs",
    "read_scores",
    "score_claim",
    "train_all",
]

MODELS_DIR = "models"
SUBJECTS = ("claim", "facility", "person", "staff", "ring")
FRAMES: dict[str, Callable[..., SubjectFrame]] = {
    "claim": claim.frame, "facility": facility.frame, "person": person.frame,
    "staff": staff.frame, "ring": ring.frame}
HYPER: dict[str, dict[str, Any]] = {
    "claim": {"n_estimators": 150, "num_leaves": 31, "min_child_samples": 20},
    "facility": {"n_estimators": 300, "num_leaves": 4, "min_child_samples": 20,
                 "learning_rate": 0.03},
    "person": {"n_estimators": 200, "num_leaves": 15, "min_child_samples": 10},
    "staff": {"n_estimators": 150, "num_leaves": 7, "min_child_samples": 5},
    "ring": {"n_estimators": 100, "num_leaves": 4, "min_child_samples": 3},
}
BUDGETS: dict[str, dict[str, Any]] = {
    "claim": {"budget_top": 200, "budget_frac": None},
    "facility": {"budget_frac": 0.05, "budget_top": None},
    "person": {"budget_top": 200, "budget_frac": None},
    "staff": {"budget_frac": 0.05, "budget_top": None},
    "ring": {"budget_frac": 0.2, "budget_top": None},
}
"""Inspection budgets: top 5 % of facilities and staff, top 200 claims and persons."""


@dataclass
class TrainResult:
    """Fitted models, their grouped-CV metrics, scores per entity and MLflow runs."""

    models: dict[str, HybridRiskModel] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = []
        for s, m in self.metrics.items():
            o = m.get("oof", {})
            lines.append(f"{s:9s} n={int(o.get('n', 0)):>7} pos={int(o.get('positives', 0)):>5}"
                         f" ROC-AUC={o.get('roc_auc', float('nan')):.3f}"
                         f" PR-AUC={o.get('pr_auc', float('nan')):.3f}"
                         f" P@budget={o.get('precision_at_budget', float('nan')):.3f}"
                         f" R@budget={o.get('recall_at_budget', float('nan')):.3f}"
                         f" ({self.timings.get(s, 0):.1f} s)")
        return "\n".join(lines)


def _ws(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    return ws.require()


def models_dir(ws: Workspace) -> Path:
    return ws.path / MODELS_DIR


def factory(subject: str, n_jobs: int = 1, seed: int = 0, directions: Sequence[int] | None = None,
            **overrides: Any) -> Callable[[], HybridRiskModel]:
    """A constructor of the subject's estimator with its hyperparameters."""
    hp = {**HYPER[subject], **overrides}

    def make() -> HybridRiskModel:
        return HybridRiskModel(n_jobs=n_jobs, random_state=seed, directions=directions, **hp)

    return make


def build_frame(workspace: Workspace | str | os.PathLike[str], subject: str, *,
                sources: Sequence[str] = ALL_SOURCES, train_on: str = "auto",
                claim_rollup: pd.DataFrame | None = None) -> SubjectFrame:
    """The model input of one subject (facility rows get the claim-risk roll-up if given)."""
    ws = _ws(workspace)
    fr = FRAMES[subject](ws, tuple(sources), train_on)
    if subject == "facility" and claim_rollup is not None and len(claim_rollup):
        r = claim_rollup.set_index("facility_id").reindex(fr.ids)
        for c in r.columns:
            fr.X[c] = r[c].to_numpy()
        fr.directions = [*fr.directions, *([1] * len(r.columns))]
    return fr


def train_all(
    workspace: Workspace | str | os.PathLike[str],
    subjects: Sequence[str] = SUBJECTS,
    *,
    sources: Sequence[str] = ALL_SOURCES,
    train_on: str = "auto",
    evaluate: bool = True,
    n_splits: int = 5,
    n_jobs: int = 1,
    seed: int = 0,
    track: bool = True,
    tracking_uri: str | None = None,
    register: bool = True,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> TrainResult:
    """Train every subject model on the workspace; evaluate, keep and log them.

    ``sources`` selects label sources (``("inspection",)`` trains on inspector feedback only);
    ``train_on`` is the unlabelled policy of :func:`fraudscan.models.data.attach_labels`.
    Evaluation is grouped by facility (plus a forward-in-time check for claims). Results are
    written to ``W/models/`` and, with ``track``, to MLflow with ``champion`` aliases.
    """
    ws = _ws(workspace)
    unknown = set(subjects) - set(SUBJECTS)
    if unknown:
        raise ValueError(f"unknown subjects {sorted(unknown)}; known: {', '.join(SUBJECTS)}")
    res = TrainResult()
    out_dir = models_dir(ws)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = ws.fingerprint()
    rollup: pd.DataFrame | None = None
    order = [s for s in SUBJECTS if s in subjects]
    for subject in order:
        t0 = time.perf_counter()
        fr = build_frame(ws, subject, sources=sources, train_on=train_on,
                         claim_rollup=rollup if subject == "facility" else None)
        hp = {**HYPER[subject], **(hyper or {}).get(subject, {})}
        # small label sets (a few dozen facilities) cannot fill 20-row leaves
        hp["min_child_samples"] = min(hp.get("min_child_samples", 20),
                                      max(3, int(fr.labelled.sum()) // 10))
        make = factory(subject, n_jobs=n_jobs, seed=seed, directions=fr.directions, **hp)
        lab = fr.labelled
        m: dict[str, Any] = {}
        if len(fr) == 0:
            log(f"{subject}: no rows, skipped")
            continue
        if evaluate and lab.sum() >= 4 and len(np.unique(fr.y[lab])) == 2:
            m = evaluate_frame(make, fr, n_splits=n_splits, seed=seed, **BUDGETS[subject])
        fit = lab if lab.any() else np.ones(len(fr), bool)  # no labels: outliers only
        model = make().fit(fr.X.to_numpy()[fit], np.nan_to_num(fr.y[fit]).astype(int),
                           peer_groups=fr.peer[fit], feature_names=list(fr.X.columns),
                           X_unlabelled=fr.X.to_numpy()[~fit],
                           peer_groups_unlabelled=fr.peer[~fit])
        risk = model.risk(fr.X.to_numpy(), fr.peer)
        oof = m.pop("risk", None)
        if subject == "claim":
            src = np.where(np.isnan(oof), risk, oof) if oof is not None else \
                model.outlier_.risk(fr.X.to_numpy(), fr.peer)
            rollup = claim.facility_rollup(fr, src)
        scores = fr.meta.copy()
        scores["risk_score"] = risk
        scores["oof_risk"] = oof if oof is not None else np.nan
        scores["label"] = fr.y
        scores["expected_recoverable"] = risk * scores["amount_at_stake"].astype(float)
        scores["peer_group"] = fr.peer
        res.models[subject], res.scores[subject], res.metrics[subject] = model, scores, m
        joblib.dump({"model": model, "features": list(fr.X.columns)},
                    out_dir / f"{subject}.joblib")
        scores.to_parquet(out_dir / f"scores_{subject}.parquet", index=False)
        fr.X.assign(_id=fr.ids, _peer=fr.peer).to_parquet(out_dir / f"X_{subject}.parquet",
                                                          index=False)
        res.timings[subject] = time.perf_counter() - t0
        if track:
            t1 = time.perf_counter()
            params = {**hp, "n_jobs": n_jobs, "seed": seed, "train_on": train_on,
                      "label_sources": list(sources), "rows": len(fr),
                      "labelled": int(lab.sum()), "positives": int(np.nansum(fr.y == 1)),
                      "supervised_weight": model.weight_, **BUDGETS[subject]}
            res.runs[subject] = _log(subject, model, fr, m, oof, params, fingerprint,
                                     register, tracking_uri)
            res.timings[f"{subject}_mlflow"] = time.perf_counter() - t1
        log(f"{subject}: {len(fr)} rows, {int(np.nansum(fr.y == 1))} positives, "
            f"{res.timings[subject]:.1f} s")
    (out_dir / "metrics.json").write_text(json.dumps(
        {"fingerprint": fingerprint, "metrics": res.metrics, "runs": res.runs,
         "timings": res.timings}, indent=2, default=_json), encoding="utf-8")
    return res


def _json(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _log(subject: str, model: HybridRiskModel, fr: SubjectFrame, m: Mapping[str, Any],
         oof: np.ndarray | None, params: Mapping[str, Any], fingerprint: str, register: bool,
         uri: str | None) -> dict[str, Any]:
    from fraudscan.models.tracking import log_training

    figures, tables = {}, {}
    if m:
        # a bare Figure draws without pyplot, so the caller's backend (e.g. a notebook's) stays
        from matplotlib.figure import Figure
        from sklearn.metrics import precision_recall_curve

        y = fr.y
        if oof is not None:
            ok = ~np.isnan(y) & ~np.isnan(oof)
            p, r, _ = precision_recall_curve(y[ok].astype(int), oof[ok])
            fig = Figure(figsize=(4, 3))
            ax = fig.subplots()
            ax.plot(r, p)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_title(f"{subject}: grouped out-of-fold PR curve")
            figures["pr_curve"] = fig
        if m.get("scenario_recall"):
            tables["scenario_recall"] = pd.DataFrame(
                sorted(m["scenario_recall"].items()), columns=["scenario", "recall_at_budget"])
    imp = _importance(model)
    if imp is not None:
        tables["feature_importance"] = imp
    info = log_training(subject, model, params=params,
                        metrics=m,
                        features=list(fr.X.columns), fingerprint=fingerprint,
                        figures=figures, tables=tables, register=register, uri=uri)
    return info


def _importance(model: HybridRiskModel) -> pd.DataFrame | None:
    if model.booster_ is None:
        return None
    b = model.booster_
    return pd.DataFrame({"feature": b.feature_name(),
                         "gain": b.feature_importance("gain")}).sort_values("gain",
                                                                            ascending=False)


def load_model(workspace: Workspace | str | os.PathLike[str], subject: str) -> HybridRiskModel:
    """The model last trained on this workspace (``W/models/<subject>.joblib``)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    p = models_dir(ws) / f"{subject}.joblib"
    if not p.is_file():
        from fraudscan.errors import FraudscanError

        raise FraudscanError(f"no {subject} model in {ws.path}; run `fraudscan train` first")
    return joblib.load(p)["model"]


def read_scores(workspace: Workspace | str | os.PathLike[str], subject: str) -> pd.DataFrame:
    """Per-entity risk scores of the last training run (``W/models/scores_<subject>.parquet``)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    p = models_dir(ws) / f"scores_{subject}.parquet"
    if not p.is_file():
        from fraudscan.errors import FraudscanError

        raise FraudscanError(f"no {subject} scores in {ws.path}; run `fraudscan train` first")
    return pd.read_parquet(p)


def read_inputs(workspace: Workspace | str | os.PathLike[str], subject: str,
                ids: Sequence[str] | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(features, ids, peer groups) the last training run scored, optionally for some ids."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    p = models_dir(ws) / f"X_{subject}.parquet"
    if not p.is_file():
        from fraudscan.errors import FraudscanError

        raise FraudscanError(f"no {subject} model inputs in {ws.path}; run `fraudscan train`")
    filters = [("_id", "in", [str(i) for i in ids])] if ids is not None else None
    df = pd.read_parquet(p, filters=filters)
    return (df.drop(columns=["_id", "_peer"]), df["_id"].astype(str).to_numpy(),
            df["_peer"].astype(str).to_numpy())


def explain_lead(workspace: Workspace | str | os.PathLike[str], lead_id: str,
                 top: int = 3) -> list[dict[str, Any]]:
    """Reasons for one screening lead: ``[{feature, value, peer_p95, contribution, zh, en}]``.

    SHAP of the lead's subject (settlement → claim model, person, staff, facility, ring) in the
    last training run; computed on request, never on the pre-payment path.
    """
    from fraudscan.suspects import explain_lead as _explain

    return _explain(workspace, lead_id, top=top)["reasons"]


def score_claim(model: HybridRiskModel, features: Mapping[str, Any],
                peer_group: str | None = None) -> float:
    """Risk of one claim from its feature dict (pre-payment path: raw Booster, no SHAP)."""
    return model.score_one(features, peer_group)


__all__ += ["budget_size", "metrics"]
