"""The shared estimators follow the scikit-learn contract and rank outliers without labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from fraudscan.models.base import HybridRiskModel, PeerOutlierScorer


@pytest.mark.parametrize("est", [PeerOutlierScorer(), HybridRiskModel(n_estimators=20)],
                         ids=lambda e: type(e).__name__)
def test_sklearn_estimator_checks(est) -> None:
    failures = check_estimator(est, on_fail=None)
    bad = [f for f in failures if f["status"] == "failed"]
    assert not bad, [(f["check_name"], str(f["exception"])[:200]) for f in bad]


def test_peer_outliers_rank_within_peer_groups() -> None:
    rng = np.random.default_rng(0)
    n = 400
    groups = np.where(np.arange(n) % 2 == 0, "big", "small")
    X = rng.normal(size=(n, 4))
    X[groups == "big"] += 10.0          # a different but normal peer group
    X[:5, 0] += 12.0                    # five real outliers in group "big"
    s = PeerOutlierScorer(directions=[1, 0, 0, 0]).fit(X, peer_groups=groups)
    risk = s.risk(X, groups)
    assert set(np.argsort(-risk)[:5]) == set(range(5))
    assert s.peer_quantile("big")[1] > 10 > s.peer_quantile("small")[1]


def test_hybrid_without_labels_uses_outliers_and_with_labels_learns() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 5))
    y = (X[:, 1] > 1.2).astype(int)
    m0 = HybridRiskModel().fit(X, np.zeros(600, int))
    assert m0.booster_ is None and m0.weight_ == 0.0
    m = HybridRiskModel(n_estimators=50).fit(X, y, feature_names=list("abcde"))
    assert m.booster_ is not None and m.weight_ > 0.8
    r = m.risk(X)
    assert r[y == 1].mean() > r[y == 0].mean() + 0.4
    one = m.score_one(dict(zip("abcde", X[0], strict=True)))
    assert one == pytest.approx(r[0])
    c = m.contributions(X[:3])
    assert c.shape == (3, 5)
