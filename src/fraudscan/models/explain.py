"""Reasons for what is returned to inspectors: SHAP contributions turned into sentences.

Computed only for the rows an inspector sees (a suspect list, one lead), never on the
pre-payment path. SHAP values are LightGBM's exact TreeSHAP (``pred_contrib``, the values
``shap.TreeExplainer`` gives for the same Booster, at a fraction of the cost); for a model
trained without labels the reasons are the largest peer z-scores.

A reason must be something an inspector can check on site, so an indicator is cited only on
its risky side of the peer group and the sentence says exactly where it sits:

* beyond the peer P95 (``basis="above_p95"``), listed first::

    平均住院日 14.2天，超过同级同类机构 P95（9.1天）
    Average length of stay 14.2 days, above the P95 of peer facilities (9.1 days)

* otherwise above the peer median (``above_median``) — or below it for indicators where low
  is risky, such as trace-code coverage (``below_median``)::

    平均住院日 8.1天，高于同级同类机构中位数（6.0天），未超过 P95（9.1天）

Indicators on the ordinary side of the median are never cited, even when SHAP pushes them up.
Names and units come from ``feature_labels.yaml`` (one entry per model feature; ``__mean`` /
``__max`` and ``_pct`` variants are derived).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from fraudscan.models.base import HybridRiskModel

KINDS = ("num", "pct", "flag")


@dataclass(frozen=True)
class Label:
    """Chinese and English name of a feature, its units and how its value is shown."""

    zh: str
    en: str
    unit_zh: str = ""
    unit_en: str = ""
    kind: str = "num"
    """num: value with unit; pct: a share shown as %; flag: yes/no."""


@lru_cache(maxsize=1)
def _load_labels() -> dict[str, Label]:
    text = resources.files("fraudscan.models").joinpath("feature_labels.yaml").read_text(
        "utf-8")
    out = {}
    for k, v in yaml.safe_load(text).items():
        zh, en, uz, ue, kind = (str(x) for x in v)
        if kind not in KINDS:
            raise ValueError(f"feature_labels.yaml: {k}: kind must be one of {KINDS}")
        out[str(k)] = Label(zh, en, uz, ue, kind)
    return out


LABELS: dict[str, Label] = _load_labels()
"""Base feature name → label (``feature_labels.yaml``)."""
PEERS = {"facility": ("同级同类机构", "peer facilities"),
         "person": ("同险种同年龄段人员", "peer insured persons"),
         "staff": ("同科室同类人员", "peer staff"),
         "claim": ("同病组同级机构病例", "peer claims"),
         "ring": ("其他团伙", "other rings")}
AGG = {"mean": ("月均", "monthly mean"), "max": ("月最高", "monthly peak")}


def label(feature: str) -> Label | None:
    """The label of a model feature, or None when it has none (a test keeps that empty).

    ``x__mean`` / ``x__max`` add the monthly aggregate; ``x_pct`` is the peer percentile of x.
    """
    base, _, agg = feature.partition("__")
    if agg and agg not in AGG:
        return None
    lab = LABELS.get(base)
    if lab is None and base.endswith("_pct") and base[:-4] in LABELS:
        core = LABELS[base[:-4]]
        lab = Label(f"{core.zh}同组百分位", f"peer percentile of {core.en[:1].lower()}"
                    f"{core.en[1:]}", kind="pct")
    if lab is None:
        return None
    if agg:
        lab = Label(f"{lab.zh}（{AGG[agg][0]}）", f"{lab.en} ({AGG[agg][1]})", lab.unit_zh,
                    lab.unit_en, lab.kind)
    return lab


@dataclass
class Reason:
    """One reason: the indicator, its value, the peer P95 and median, and the sentences."""

    feature: str
    value: float
    peer_p95: float
    contribution: float
    zh: str
    en: str
    peer_median: float = math.nan
    basis: str = "above_p95"
    """above_p95, above_median or below_median: where the value sits among its peers."""


def _fmt(v: float, pct: bool, digits: int | None = None) -> str:
    if v is None or not np.isfinite(v):
        return "—"
    if pct:
        return f"{v * 100:.{1 if digits is None else digits}f}%"
    if digits is not None:
        return f"{v:,.{digits}f}" if abs(v) >= 1e4 else f"{v:.{digits}f}"
    a = abs(v)
    if a >= 1e4:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if float(v).is_integer():
        return f"{v:.0f}"
    return f"{v:.1f}" if a >= 1 else f"{v:.2f}"


def _above(v: np.ndarray | float, ref: np.ndarray | float) -> np.ndarray | bool:
    """``v`` clearly above ``ref``: float noise (69.99999% vs 69.99998%) is not a reason."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(ref) & (v > ref + 1e-6 * np.maximum(1.0, np.abs(ref)))


def _pair(v: float, ref: float, pct: bool) -> tuple[str, str]:
    """Format a value and a peer figure so that different numbers never print the same."""
    a, b = _fmt(v, pct), _fmt(ref, pct)
    digits = 2
    while a == b and v != ref and np.isfinite(v) and np.isfinite(ref) and digits <= 6:
        a, b = _fmt(v, pct, digits), _fmt(ref, pct, digits)
        digits += 1
    return a, b


def sentence(feature: str, value: float, p95: float, kind: str,
             median: float | None = None) -> tuple[str, str]:
    """The Chinese and English sentence for one indicator against its peers.

    It states the true relation of ``value`` to the peer P95 (and median when given), so a
    sentence never reads "above P95" for a value at or below it.
    """
    lab = label(feature) or Label(feature, feature)
    pz, pe = PEERS.get(kind, ("同类", "peers"))
    en = f"{lab.en[:1].upper()}{lab.en[1:]}"
    fin = np.isfinite(p95) if p95 is not None else False
    if lab.kind == "flag":
        yes = bool(value and np.isfinite(value) and value > 0)
        vz, ve = ("是", "yes") if yes else ("否", "no")
        if fin and _above(value, p95):
            return f"{lab.zh}：{vz}（{pz}中不足 5%）", f"{en}: {ve} (under 5% of {pe})"
        if median is not None and np.isfinite(median) and value != median:
            mz, me = ("是", "yes") if median > 0 else ("否", "no")
            return (f"{lab.zh}：{vz}（{pz}中位数为{mz}）",
                    f"{en}: {ve} (peer median: {me})")
        return f"{lab.zh}：{vz}", f"{en}: {ve}"
    pct = lab.kind == "pct"
    uz, ue = ("", "") if pct else (lab.unit_zh, f" {lab.unit_en}" if lab.unit_en else "")
    v, p = _pair(value, p95, pct)
    if fin and _above(value, p95):
        return (f"{lab.zh} {v}{uz}，超过{pz} P95（{p}{uz}）",
                f"{en} {v}{ue}, above the P95 of {pe} ({p}{ue})")
    if median is not None and np.isfinite(median) and value != median:
        v, m = _pair(value, median, pct)
        if value > median:
            if not fin:
                return (f"{lab.zh} {v}{uz}，高于{pz}中位数（{m}{uz}）",
                        f"{en} {v}{ue}, above the median of {pe} ({m}{ue})")
            _, p = _pair(value, p95, pct)
            return (f"{lab.zh} {v}{uz}，高于{pz}中位数（{m}{uz}），未超过 P95（{p}{uz}）",
                    f"{en} {v}{ue}, above the median of {pe} ({m}{ue}), not above the P95 "
                    f"of {pe} ({p}{ue})")
        return (f"{lab.zh} {v}{uz}，低于{pz}中位数（{m}{uz}）",
                f"{en} {v}{ue}, below the median of {pe} ({m}{ue})")
    return (f"{lab.zh} {v}{uz}；{pz} P95 为 {p}{uz}",
            f"{en} {v}{ue}; P95 of {pe} is {p}{ue}")


def explain(model: HybridRiskModel, X: pd.DataFrame, peer_groups: np.ndarray, kind: str,
            top: int = 3) -> list[list[Reason]]:
    """Top ``top`` verifiable reasons for each row of ``X``.

    Candidates are features with a positive contribution on their risky side of the peer
    median (direction +1: above, -1: below, 0: either). Those beyond the peer P95 on the high
    side come first, then the rest, each by contribution. A row may get fewer than ``top``.
    """
    if len(X) == 0:
        return []
    Xv = X[model.feature_names_].to_numpy(dtype=np.float64)
    contrib = model.contributions(Xv, peer_groups)
    out: list[list[Reason]] = []
    d = model.outlier_.directions_
    stats = model.outlier_.stats_
    for i in range(len(X)):
        p95 = model.outlier_.peer_quantile(peer_groups[i])
        med = stats.get(str(peer_groups[i]), stats["__all__"])[0]
        v = Xv[i]
        with np.errstate(invalid="ignore"):
            beyond = (d >= 0) & _above(v, p95)
            risky_side = ((d >= 0) & (v > med)) | ((d <= 0) & (v < med))
        ok = (contrib[i] > 0) & np.isfinite(v) & (beyond | risky_side)
        order = np.lexsort((-contrib[i], ~beyond))
        reasons: list[Reason] = []
        for j in order:
            if len(reasons) >= top:
                break
            if not ok[j]:
                continue
            name = model.feature_names_[j]
            zh, en = sentence(name, v[j], p95[j], kind, median=med[j])
            basis = ("above_p95" if beyond[j] else
                     "above_median" if v[j] > med[j] else "below_median")
            reasons.append(Reason(name, float(v[j]), float(p95[j]), float(contrib[i, j]),
                                  zh, en, float(med[j]), basis))
        out.append(reasons)
    return out
