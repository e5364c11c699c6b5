"""Estimators shared by the 3+1 models: a peer-outlier scorer and a hybrid risk classifier.

Confirmed fraud labels are scarce in real supervision, so every subject model combines

* :class:`PeerOutlierScorer` — unsupervised robust z-scores (median / MAD) of each feature within
  the entity's peer group (facility type and level, insurance type, ...), which ranks entities
  with no labels at all, and
* a LightGBM model trained on whatever labels exist, with the outlier score as an extra input.

:class:`HybridRiskModel` blends the two, trusting the supervised part more as positives grow
(``w = n_pos / (n_pos + prior_strength)``). The raw :class:`lightgbm.Booster` is exposed as
``booster_`` because serving calls it directly (the sklearn wrapper costs ~35× per row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, OutlierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

_GLOBAL = "__all__"


def _peer_keys(peer_groups: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray:
    if peer_groups is None:
        return np.full(n, _GLOBAL, dtype=object)
    keys = np.asarray(peer_groups, dtype=object).astype(str)
    if len(keys) != n:
        raise ValueError(f"peer_groups has {len(keys)} entries for {n} rows")
    return keys


class PeerOutlierScorer(OutlierMixin, BaseEstimator):
    """Robust z-scores within peer groups, summarised as the mean of the largest ones.

    ``directions`` per feature: +1 only high values are suspicious, -1 only low, 0 both ways.
    Groups with fewer than ``min_peers`` members use the population statistics. Following the
    sklearn convention ``score_samples`` is lower for more abnormal rows; :meth:`risk` gives the
    outlyingness as a number in [0, 1) that grows with it. Missing values count as typical.
    """

    def __init__(self, directions: Sequence[int] | None = None, min_peers: int = 5,
                 top_k: int = 3, z_clip: float = 10.0, contamination: float = 0.1):
        self.directions = directions
        self.min_peers = min_peers
        self.top_k = top_k
        self.z_clip = z_clip
        self.contamination = contamination

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @staticmethod
    def _stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(X, axis=0)
                mad = np.nanmedian(np.abs(X - med), axis=0) * 1.4826
                sd = np.nanstd(X, axis=0)
                p95 = np.nanpercentile(X, 95, axis=0)
        scale = np.where(mad > 1e-9, mad, np.where(sd > 1e-9, sd, 1.0))
        return np.nan_to_num(med), scale, p95

    def fit(self, X: Any, y: Any = None, peer_groups: Sequence[Any] | None = None
            ) -> PeerOutlierScorer:
        """Learn median, scale and P95 of every feature per peer group (and overall)."""
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        if not 0 < self.contamination <= 0.5:
            raise ValueError("contamination must be in (0, 0.5]")
        keys = _peer_keys(peer_groups, X.shape[0])
        d = np.zeros(X.shape[1]) if self.directions is None else np.asarray(self.directions)
        if d.shape != (X.shape[1],):
            raise ValueError("directions must have one entry per feature")
        self.directions_ = d.astype(float)
        self.stats_: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
            _GLOBAL: self._stats(X)}
        self.group_sizes_: dict[str, int] = {}
        for k in np.unique(keys):
            rows = keys == k
            self.group_sizes_[str(k)] = int(rows.sum())
            if k != _GLOBAL and rows.sum() >= self.min_peers:
                self.stats_[str(k)] = self._stats(X[rows])
        raw = self._outlyingness(X, keys)
        self.train_scores_ = np.sort(raw)
        self.offset_ = float(-np.percentile(raw, 100 * (1 - self.contamination)))
        return self

    def z_scores(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """Signed robust z of every value against its peer group (0 where missing)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        return self._z(X, _peer_keys(peer_groups, X.shape[0]))

    def _z(self, X: np.ndarray, keys: np.ndarray) -> np.ndarray:
        z = np.zeros_like(X)
        for k in np.unique(keys):
            rows = keys == k
            med, scale, _ = self.stats_.get(str(k), self.stats_[_GLOBAL])
            z[rows] = (X[rows] - med) / scale
        z = np.nan_to_num(z, nan=0.0, posinf=self.z_clip, neginf=-self.z_clip)
        return np.clip(z, -self.z_clip, self.z_clip)

    def _outlyingness(self, X: np.ndarray, keys: np.ndarray) -> np.ndarray:
        z = self._z(X, keys)
        d = self.directions_
        s = np.where(d > 0, np.maximum(z, 0), np.where(d < 0, np.maximum(-z, 0), np.abs(z)))
        k = max(1, min(self.top_k, s.shape[1]))
        top = -np.sort(-s, axis=1)[:, :k]
        return top.mean(axis=1)

    def peer_quantile(self, peer_group: Any, q: int = 95) -> np.ndarray:
        """P95 of each feature in ``peer_group`` (population P95 for small or unknown groups)."""
        check_is_fitted(self)
        if q != 95:
            raise ValueError("only the P95 is kept")
        return self.stats_.get(str(peer_group), self.stats_[_GLOBAL])[2]

    def score_samples(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """Opposite of the outlyingness (lower = more abnormal, as in IsolationForest)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        return -self._outlyingness(X, _peer_keys(peer_groups, X.shape[0]))

    def decision_function(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """Negative for the ``contamination`` share of training rows that are most abnormal."""
        return self.score_samples(X, peer_groups) - self.offset_

    def predict(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """-1 for outliers, +1 for inliers."""
        return np.where(self.decision_function(X, peer_groups) < 0, -1, 1)

    def risk(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """Outlyingness mapped to [0, 1): the share of training rows less abnormal."""
        raw = -self.score_samples(X, peer_groups)
        return self.risk_from_raw(raw)

    def risk_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Empirical CDF of the training outlyingness (ties broken upwards)."""
        n = len(self.train_scores_)
        return np.searchsorted(self.train_scores_, raw, side="left") / max(n, 1)


DEFAULT_LGB_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "verbosity": -1,
    "feature_pre_filter": False,
    "deterministic": True,
    "force_row_wise": True,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


class HybridRiskModel(ClassifierMixin, BaseEstimator):
    """Binary fraud-risk classifier: LightGBM on labels plus a peer-outlier score.

    ``predict_proba[:, 1]`` is ``w * p_lightgbm + (1 - w) * outlier_risk`` with
    ``w = n_pos / (n_pos + prior_strength)`` (0 without positives or without both classes), so the
    model ranks by outlyingness when nothing is labelled and by the labels once there are many.
    ``n_jobs`` is LightGBM's thread count: 1 by default, since two threads on a busy two-core
    host ran several times slower.
    """

    def __init__(self, n_estimators: int = 200, learning_rate: float = 0.05,
                 num_leaves: int = 15, min_child_samples: int = 10,
                 scale_pos_weight: float = 1.0, prior_strength: float = 10.0,
                 min_positives: int = 3, directions: Sequence[int] | None = None,
                 n_jobs: int = 1, random_state: int = 0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.scale_pos_weight = scale_pos_weight
        self.prior_strength = prior_strength
        self.min_positives = min_positives
        self.directions = directions
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def lgb_params(self) -> dict[str, Any]:
        """The LightGBM parameters this model trains with (logged to MLflow)."""
        return {**DEFAULT_LGB_PARAMS, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
                "scale_pos_weight": self.scale_pos_weight, "num_threads": self.n_jobs,
                "seed": self.random_state}

    def fit(self, X: Any, y: Any, peer_groups: Sequence[Any] | None = None,
            feature_names: Sequence[str] | None = None, X_unlabelled: Any = None,
            peer_groups_unlabelled: Sequence[Any] | None = None) -> HybridRiskModel:
        """Fit the peer-outlier scorer on all rows (plus unlabelled ones) and LightGBM on labels.
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        kind = type_of_target(y)
        if kind not in ("binary", "unknown") and not (kind == "multiclass"
                                                       and len(np.unique(y)) < 2):
            raise ValueError(f"Only binary classification is supported; got target {kind}")
        self.classes_ = np.unique(y)
        if len(self.classes_) > 2:
            raise ValueError("Only binary classification is supported")
        self.feature_names_ = (list(feature_names) if feature_names is not None
                               else [f"x{i}" for i in range(X.shape[1])])
        if len(self.feature_names_) != X.shape[1]:
            raise ValueError("feature_names must name every column")
        Xo, po = X, peer_groups
        if X_unlabelled is not None and len(X_unlabelled):
            Xu = np.asarray(X_unlabelled, dtype=np.float64)
            Xo = np.vstack([X, Xu])
            po = np.concatenate([_peer_keys(peer_groups, len(X)),
                                 _peer_keys(peer_groups_unlabelled, len(Xu))])
        self.outlier_ = PeerOutlierScorer(directions=self.directions).fit(Xo, None, po)
        pos = (y == self.classes_[-1]) if len(self.classes_) == 2 else np.zeros(len(y), bool)
        self.n_positives_ = int(pos.sum())
        self.booster_: lgb.Booster | None = None
        self.weight_ = 0.0
        if len(self.classes_) == 2 and self.n_positives_ >= self.min_positives:
            out = self.outlier_.risk(X, peer_groups)
            data = lgb.Dataset(np.column_stack([X, out]), label=pos.astype(float),
                               feature_name=[*self.feature_names_, "peer_outlier"],
                               free_raw_data=True)
            self.booster_ = lgb.train(self.lgb_params(), data,
                                      num_boost_round=self.n_estimators)
            self.weight_ = self.n_positives_ / (self.n_positives_ + self.prior_strength)
        return self

    def _check(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite="allow-nan",
                             dtype=np.float64)

    def risk_parts(self, X: Any, peer_groups: Sequence[Any] | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        """(outlier risk, LightGBM probability or None) for each row."""
        X = self._check(X)
        out = self.outlier_.risk(X, peer_groups)
        if self.booster_ is None:
            return out, None
        return out, self.booster_.predict(np.column_stack([X, out]))

    def risk(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """Blended risk in [0, 1] (higher = riskier)."""
        out, sup = self.risk_parts(X, peer_groups)
        return out if sup is None else self.weight_ * sup + (1 - self.weight_) * out

    def predict_proba(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """Columns: P(clean), P(fraud) — or a single column when fitted on one class."""
        r = self.risk(X, peer_groups)
        if len(self.classes_) == 1:
            return np.ones((len(r), 1))
        return np.column_stack([1 - r, r])

    def predict(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """The more probable class."""
        p = self.predict_proba(X, peer_groups)
        if p.shape[1] == 1:
            return np.repeat(self.classes_[0], p.shape[0])
        return self.classes_[(p[:, 1] > 0.5).astype(int)]

    def score_one(self, features: Mapping[str, Any], peer_group: Any = None) -> float:
        """Risk of one row given as ``{feature: value}`` (missing keys are missing values).

        The pre-payment path: a 1-row NumPy array straight into the Booster, no pandas.
        """
        check_is_fitted(self)
        x = np.array([[_num(features.get(f)) for f in self.feature_names_]], dtype=np.float64)
        keys = np.array([_GLOBAL if peer_group is None else str(peer_group)], dtype=object)
        out = self.outlier_.risk_from_raw(self.outlier_._outlyingness(x, keys))
        if self.booster_ is None:
            return float(out[0])
        sup = self.booster_.predict(np.column_stack([x, out]))
        return float(self.weight_ * sup[0] + (1 - self.weight_) * out[0])

    def contributions(self, X: Any, peer_groups: Sequence[Any] | None = None) -> np.ndarray:
        """SHAP values per feature (LightGBM's exact TreeSHAP), or signed peer z-scores.

        Shape ``(n, n_features)``: the peer-outlier input's SHAP value is spread over the
        features in proportion to their share of the outlyingness, so reasons name real
        indicators. Without a booster the (direction-aware) z-scores are returned.
        """
        X = self._check(X)
        keys = _peer_keys(peer_groups, X.shape[0])
        z = self.outlier_._z(X, keys)
        d = self.outlier_.directions_
        zpos = np.where(d > 0, np.maximum(z, 0), np.where(d < 0, np.maximum(-z, 0), np.abs(z)))
        if self.booster_ is None:
            return zpos
        out = self.outlier_.risk(X, keys)
        contrib = self.booster_.predict(np.column_stack([X, out]), pred_contrib=True)
        shap_x, shap_out = contrib[:, : X.shape[1]], contrib[:, X.shape[1]]
        share = zpos / np.maximum(zpos.sum(axis=1, keepdims=True), 1e-12)
        return shap_x + share * shap_out[:, None]


def _num(v: Any) -> float:
    if v is None:
        return np.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return np.nan
    return f
