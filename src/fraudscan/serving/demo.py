"""A small claim model registered as champion, for tests, benchmarks and demos.

The real champion comes from ``fraudscan train`` (:func:`fraudscan.models.train_all`); this
trains the same estimator (:class:`~fraudscan.models.base.HybridRiskModel`) on the features the
service computes from a request, so a fresh workspace can be served end to end in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fraudscan.workspace import Workspace


def demo_uri(workspace: str | os.PathLike[str]) -> str:
    root = Path(workspace) / "mlflow"
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def train_demo_champion(workspace: str | os.PathLike[str], *, max_claims: int = 4000,
                        seed: int = 0, n_estimators: int = 30) -> dict[str, Any]:
    """Fit on the workspace's settlements and register as ``fraudscan-claim@champion``
    in ``W/mlflow``; returns :func:`fraudscan.models.tracking.log_training`'s answer."""
    from fraudscan.models.base import HybridRiskModel
    from fraudscan.models.tracking import log_training
    from fraudscan.rules import RuleEngine, iter_workspace_claims
    from fraudscan.serving.scoring import claim_features, peer_group

    ws = Workspace(workspace)
    eng = RuleEngine(ws.read_table("catalogue"), facilities=ws.read_table("facilities"))
    claims = list(iter_workspace_claims(ws))
    rng = np.random.default_rng(seed)
    if len(claims) > max_claims:
        claims = [claims[i] for i in sorted(rng.choice(len(claims), max_claims, replace=False))]
    labels = ws.read_table("labels")
    bad = set(labels[(labels["entity_type"] == "settlement")
                     & labels["is_fraud"].astype(bool)]["entity_id"].astype(str))
    feats = [claim_features(c, eng.catalogue, eng.check_claim(c)) for c in claims]
    names = sorted({k for f in feats for k in f})
    X = np.array([[f.get(n, np.nan) for n in names] for f in feats], dtype=np.float64)
    y = np.array([c.settlement_id in bad for c in claims], dtype=int)
    model = HybridRiskModel(n_estimators=n_estimators, random_state=seed).fit(
        X, y, peer_groups=[peer_group(c) for c in claims], feature_names=names)
    return log_training("claim", model, params={"demo": True, "n": len(claims)},
                        metrics={"positives": int(y.sum())}, features=names,
                        fingerprint=ws.fingerprint(), uri=demo_uri(ws.path))
