"""Facility risk grading (分级分类监管): 1,000 points → red / orange / yellow / blue.

>>> from fraudscan.grading import grade
>>> result = grade("W", period="2025Q4")       # needs `fraudscan train` (facility scores)
>>> result.grades[["facility_id", "points", "tier", "change", "reason_en"]]
>>> result.counts                                # tiers per district

Points combine the facility model's risk, rule findings and their amounts, screening leads,
ring membership and history (weights in ``config.yaml``). Tiers are assigned by quota per
district (or by thresholds), then overrides apply (confirmed fraud → red, agreement suspended →
at least orange), then hysteresis: a tier goes up at once but steps down only after
``clean_periods_to_step_down`` periods graded lower in a row. Every period's grades are kept in
``W/grading/history.parquet`` with the reason for every change (docs/grading.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fraudscan.errors import FraudscanError
from fraudscan.workspace import Workspace

TIERS = ("blue", "yellow", "orange", "red")
"""Lowest to highest."""
TIER_NAMES = {"red": ("红牌", "驻点监管", "resident on-site supervision"),
              "orange": ("橙牌", "提级监管", "escalated supervision"),
              "yellow": ("黄牌", "重点监管", "key supervision"),
              "blue": ("蓝牌", "一般监管", "general supervision")}
COMPONENTS = ("model_risk", "rule_findings", "leads", "rings", "history")
COMPONENT_NAMES = {"model_risk": ("模型风险", "model risk"),
                   "rule_findings": ("规则违规", "rule findings"),
                   "leads": ("筛查线索", "screening leads"),
                   "rings": ("团伙关联", "collusion rings"),
                   "history": ("历史处理", "history")}
GRADING_DIR = "grading"


class GradingError(FraudscanError):
    """Grading cannot run (no facility scores, bad configuration)."""


def default_config() -> dict[str, Any]:
    """The packaged configuration (``grading/config.yaml``)."""
    text = resources.files("fraudscan.grading").joinpath("config.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def load_config(path: str | os.PathLike[str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Packaged config, updated from a YAML file and a mapping (nested keys merge)."""
    cfg = default_config()
    if path:
        cfg = _merge(cfg, yaml.safe_load(Path(path).read_text("utf-8")) or {})
    if overrides:
        cfg = _merge(cfg, overrides)
    total = sum(cfg["weights"].values())
    if abs(total - 1000) > 1e-6:
        raise GradingError(f"grading weights add up to {total}, not 1000")
    if cfg["tiers"]["mode"] not in ("quota", "threshold"):
        raise GradingError("tiers.mode must be quota or threshold")
    return cfg


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) \
            else v
    return out


@dataclass
class GradeResult:
    """Grades of one period and the tier counts per district."""

    period: str
    grades: pd.DataFrame
    counts: pd.DataFrame


def _pct(s: pd.Series) -> pd.Series:
    """Percentile rank in (0, 1], 0 where the value is 0 or missing (nothing to see)."""
    v = pd.to_numeric(s, errors="coerce").fillna(0.0)
    r = v.rank(pct=True, method="max")
    return r.where(v > 0, 0.0)


def period_end(period: str) -> pd.Timestamp:
    """Last day of a period such as ``2025Q4``, ``2025-11`` or ``2025``."""
    try:
        return pd.Period(str(period)).end_time.normalize()
    except (ValueError, TypeError):
        raise GradingError(f"period {period!r} is not a quarter (2025Q4), month (2025-11) or "
                           "year (2025)") from None


def data_end(ws: Workspace) -> pd.Timestamp | None:
    """Day of the last settlement in the workspace."""
    with ws.connect(read_only=True) as con:
        last = con.execute("SELECT max(settle_time) FROM settlements").fetchone()[0]
    return None if last is None else pd.Timestamp(last).normalize()


def _model_risk_as_of(ws: Workspace, until: pd.Timestamp) -> tuple[pd.DataFrame, tuple]:
    """Facility model risk re-scored on inputs built from what was known by ``until``.

    The trained model (``W/models/facility.joblib``) is kept; only its inputs are cut: the
    facility frame with ``until`` plus the claim-risk roll-up of claims settled by then.
    """
    from fraudscan.models import facility as fm
    from fraudscan.models import load_model, read_scores
    from fraudscan.models.data import query

    try:
        model = load_model(ws, "facility")
    except FraudscanError as e:
        raise GradingError(str(e)) from None
    fr = fm.frame(ws, until=until)
    X = fr.X.copy()
    try:
        cs = read_scores(ws, "claim")
    except FraudscanError:
        cs = None
    if cs is not None and len(cs):
        day = until.date().isoformat()
        known = query(ws, "SELECT settlement_id AS id FROM settlements WHERE "
                          f"CAST(settle_time AS DATE) <= DATE '{day}'")
        cs = cs[cs["id"].astype(str).isin(set(known["id"].astype(str)))]
        oof = pd.to_numeric(cs.get("oof_risk"), errors="coerce")
        risk = oof.where(oof.notna(), pd.to_numeric(cs["risk_score"], errors="coerce"))
        d = pd.DataFrame({"facility_id": cs["facility_id"].astype(str), "risk": risk,
                          "fund": pd.to_numeric(cs["amount_at_stake"], errors="coerce")})
        g = d.groupby("facility_id")
        roll = pd.DataFrame({"claim_risk_mean": g["risk"].mean(),
                             "claim_risk_p90": g["risk"].quantile(0.9),
                             "claim_risk_fund": (d["risk"] * d["fund"]).groupby(
                                 d["facility_id"]).sum()}).reindex(fr.ids)
        for c in roll.columns:
            X[c] = roll[c].to_numpy()
    Xm = X.reindex(columns=model.feature_names_)
    out = pd.DataFrame({"facility_id": fr.ids.astype(str),
                        "risk_score": model.risk(Xm.to_numpy(dtype=np.float64), fr.peer),
                        "fund_paid": fr.meta["fund_paid"].to_numpy()})
    # the reasons of a past period's grade quote the values of that period
    return out, (Xm.reset_index(drop=True), fr.ids.astype(str), fr.peer)


def components(ws: Workspace, until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per facility: the five component scores in [0, 1] and the raw figures behind them.

    With ``until`` (a day) only what was known by then counts: findings and leads on claims
    settled by that day, rings whose evidence had begun, outcomes dated and sanctions in
    effect by then, and — when data settled after ``until`` exist — the facility model
    re-scored on inputs cut there. Without it, everything.
    """
    last = data_end(ws)
    rescore = until is not None and last is not None and until < last
    return _components(ws, until, rescore)[0]


def _components(ws: Workspace, until: pd.Timestamp | None, rescore: bool
                ) -> tuple[pd.DataFrame, tuple | None]:
    """:func:`components` and, when re-scored, the model inputs (for the reasons)."""
    from fraudscan.models import read_scores
    from fraudscan.models.data import facility_info, finding_counts, lead_counts, ring_counts
    from fraudscan.models.facility import staff_points
    from fraudscan.outcomes import outcome_labels, statuses_as_of

    inputs = None
    if until is None or not rescore:
        try:
            sc = read_scores(ws, "facility")[["facility_id", "risk_score", "fund_paid"]]
        except FraudscanError as e:
            raise GradingError(str(e)) from None
    else:
        sc, inputs = _model_risk_as_of(ws, until)
    info = facility_info(ws)
    if until is not None:
        ag = statuses_as_of(ws, "facilities", until, ["facility_id", "agreement_status"])
        info["agreement_status"] = info["facility_id"].map(
            dict(zip(ag["facility_id"].astype(str), ag["agreement_status"], strict=True))
        ).fillna("")
    sc = sc.assign(facility_id=sc["facility_id"].astype(str))
    df = info.merge(sc, on="facility_id", how="left")

    def join(d: pd.DataFrame) -> None:
        nonlocal df
        d = d.rename(columns={"id": "facility_id"})
        d["facility_id"] = d["facility_id"].astype(str)
        df = df.merge(d, on="facility_id", how="left")

    join(finding_counts(ws, "facility_id", until))
    join(lead_counts(ws, "facility_id", until=until).drop(columns=["detectors"]))
    join(ring_counts(ws, ("facility", "pharmacy"), until).drop(columns=["ring_id"]))
    join(staff_points(ws, until))
    out = outcome_labels(ws, until)
    out = out[out["entity_type"] == "facility"]
    conf = out[out["is_fraud"].astype(bool)].groupby("entity_id").size()
    df["confirmed_cases"] = df["facility_id"].map(conf).fillna(0)
    claims = pd.to_numeric(df["fund_paid"], errors="coerce")
    for c in ("n_rule_findings", "rule_amount", "n_leads", "lead_amount", "n_rings",
              "staff_points", "suspended_staff"):
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0.0)
    fund = claims.where(claims > 0)
    df["c_model_risk"] = pd.to_numeric(df["risk_score"], errors="coerce").fillna(0).clip(0, 1)
    df["c_rule_findings"] = 0.5 * _pct(df["n_rule_findings"]) + 0.5 * _pct(
        df["rule_amount"] / fund)
    df["c_leads"] = 0.5 * _pct(df["n_leads"]) + 0.5 * _pct(df["lead_amount"] / fund)
    df["c_rings"] = np.where(df["n_rings"] > 0,
                             pd.to_numeric(df["ring_score"], errors="coerce").fillna(0.5), 0.0)
    agreement_bad = ~df["agreement_status"].isin(["", "active"])
    df["c_history"] = np.minimum(1.0, 0.5 * np.minimum(df["confirmed_cases"], 2)
                                 + 0.3 * np.minimum(df["staff_points"] / 12, 1)
                                 + 0.2 * (df["suspended_staff"] > 0) + 0.5 * agreement_bad)
    return df, inputs


def _quota_tiers(points: pd.Series, cfg: Mapping[str, Any]) -> pd.Series:
    t = cfg["tiers"]
    tier = pd.Series("blue", index=points.index)
    order = points.sort_values(ascending=False, kind="stable").index
    n = len(points)
    start = 0
    for name in ("red", "orange", "yellow"):
        k = math.ceil(t["quota"][name] * n - 1e-9)
        chosen = [i for i in order[start:start + k] if points[i] >= t["min_points"][name]]
        tier[chosen] = name
        start += len(chosen)
    return tier


def _threshold_tiers(points: pd.Series, cfg: Mapping[str, Any]) -> pd.Series:
    th = cfg["tiers"]["thresholds"]
    return pd.Series(np.select([points >= th["red"], points >= th["orange"],
                                points >= th["yellow"]], ["red", "orange", "yellow"], "blue"),
                     index=points.index)


def _at_least(tier: str, floor: str) -> str:
    return tier if TIERS.index(tier) >= TIERS.index(floor) else floor


def history_path(ws: Workspace) -> Path:
    return ws.path / GRADING_DIR / "history.parquet"


def read_history(workspace: Workspace | str | os.PathLike[str]) -> pd.DataFrame:
    """Every graded period (empty when never graded)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    p = history_path(ws)
    return pd.read_parquet(p) if p.is_file() else pd.DataFrame()


def default_period(ws: Workspace) -> str:
    """The quarter of the last settlement, e.g. ``2025Q4``."""
    with ws.connect(read_only=True) as con:
        last = con.execute("SELECT max(settle_time) FROM settlements").fetchone()[0]
    ts = pd.Timestamp(last) if last is not None else pd.Timestamp.today()
    return f"{ts.year}Q{ts.quarter}"


def grade(workspace: Workspace | str | os.PathLike[str], period: str | None = None, *,
          config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
          save: bool = True, explain: bool = True) -> GradeResult:
    """Grade every facility for ``period`` (default: quarter of the last settlement).

    Uses only what was known by the end of the period (:func:`components`), so re-grading a
    past period after more data, findings or outcomes arrive gives the same points.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require()
    cfg = load_config(overrides=config) if isinstance(config, Mapping) else load_config(config)
    period = period or default_period(ws)
    end = period_end(period)
    last = data_end(ws)
    # a period ending after the last settlement saw everything the trained scores saw; earlier
    # periods are re-scored on inputs cut at their end, so their grades stay put as data arrive
    df, inputs = _components(ws, end, rescore=last is not None and end < last)
    w = cfg["weights"]
    for c in COMPONENTS:
        df[f"pts_{c}"] = (w[c] * df[f"c_{c}"].astype(float)).round(1)
    df["points"] = df[[f"pts_{c}" for c in COMPONENTS]].sum(axis=1).round(1)
    by = df["district"] if cfg["tiers"]["by_district"] else pd.Series("", index=df.index)
    assign = _quota_tiers if cfg["tiers"]["mode"] == "quota" else _threshold_tiers
    df["score_tier"] = "blue"
    for _, idx in df.groupby(by).groups.items():
        df.loc[idx, "score_tier"] = assign(df.loc[idx, "points"], cfg)
    ov = cfg["overrides"]
    reasons_zh: list[list[str]] = [[] for _ in range(len(df))]
    reasons_en: list[list[str]] = [[] for _ in range(len(df))]
    raw = []
    for i, r in enumerate(df.itertuples(index=False)):
        t = r.score_tier
        if r.confirmed_cases > 0 and ov.get("confirmed_fraud"):
            t = _at_least(t, ov["confirmed_fraud"])
            reasons_zh[i].append("查实欺诈骗保")
            reasons_en[i].append("confirmed fraud case")
        if r.agreement_status not in ("", "active") and ov.get("agreement_suspended"):
            t = _at_least(t, ov["agreement_suspended"])
            reasons_zh[i].append(f"协议状态：{r.agreement_status}")
            reasons_en[i].append(f"agreement {r.agreement_status}")
        raw.append(t)
    df["raw_tier"] = raw
    df = _hysteresis(ws, df, period, cfg)
    df["period"] = period
    _reasons(ws, df, reasons_zh, reasons_en, explain, inputs)
    cols = ["period", "facility_id", "facility_name", "district", "facility_type", "points",
            *[f"pts_{c}" for c in COMPONENTS], "score_tier", "raw_tier", "previous_tier",
            "tier", "clean_streak", "change", "reason_zh", "reason_en"]
    grades = df[cols].sort_values(["points"], ascending=False).reset_index(drop=True)
    grades["tier_zh"] = grades["tier"].map(lambda t: "".join(TIER_NAMES[t][:2]))
    if save:
        hist = read_history(ws)
        if len(hist):
            hist = hist[hist["period"] != period]
        hist = pd.concat([hist, grades], ignore_index=True) if len(hist) else grades
        history_path(ws).parent.mkdir(parents=True, exist_ok=True)
        hist.to_parquet(history_path(ws), index=False)
    counts = (grades.assign(district=grades["district"].replace("", "—"))
              .pivot_table(index="district", columns="tier", values="facility_id",
                           aggfunc="count", fill_value=0)
              .reindex(columns=list(reversed(TIERS)), fill_value=0))
    return GradeResult(period=period, grades=grades, counts=counts)


def _hysteresis(ws: Workspace, df: pd.DataFrame, period: str,
                cfg: Mapping[str, Any]) -> pd.DataFrame:
    need = int(cfg["hysteresis"]["clean_periods_to_step_down"])
    hist = read_history(ws)
    prev = pd.DataFrame(columns=["facility_id", "tier", "clean_streak"])
    if len(hist):
        earlier = hist[hist["period"] < period]
        if len(earlier):
            last = earlier[earlier["period"] == earlier["period"].max()]
            prev = last[["facility_id", "tier", "clean_streak"]]
    p = prev.set_index("facility_id").reindex(df["facility_id"])
    tiers, streaks, changes, prevs = [], [], [], []
    for raw, pt, ps in zip(df["raw_tier"], p["tier"], p["clean_streak"], strict=True):
        if not isinstance(pt, str):
            tiers.append(raw)
            streaks.append(0)
            changes.append("new")
            prevs.append("")
            continue
        prevs.append(pt)
        if TIERS.index(raw) >= TIERS.index(pt):
            tiers.append(raw)
            streaks.append(0)
            changes.append("up" if raw != pt else "same")
        else:
            s = int(ps or 0) + 1
            if s >= need:
                tiers.append(raw)
                streaks.append(0)
                changes.append("down")
            else:
                tiers.append(pt)
                streaks.append(s)
                changes.append("held")
    df["tier"], df["clean_streak"], df["change"], df["previous_tier"] = (
        tiers, streaks, changes, prevs)
    return df


def _reasons(ws: Workspace, df: pd.DataFrame, rz: list[list[str]], re_: list[list[str]],
             explain: bool, inputs: tuple | None = None) -> None:
    """Reason text: change, top components and (for non-blue) the model's top indicators."""
    model_reasons: dict[str, tuple[str, str]] = {}
    if explain:
        model_reasons = _model_reasons(ws, df.loc[df["tier"] != "blue", "facility_id"],
                                       inputs)
    zh_out, en_out = [], []
    for i, r in enumerate(df.itertuples(index=False)):
        tz, _, te = TIER_NAMES[r.tier]
        head_zh = {"new": "首次评级", "same": "维持", "up": f"上调（原{r.previous_tier}）",
                   "down": f"连续多期降低后下调（原{r.previous_tier}）",
                   "held": f"得分降低但未满足连续期数，维持{r.previous_tier}"}[r.change]
        head_en = {"new": "first grading", "same": "unchanged",
                   "up": f"raised from {r.previous_tier}",
                   "down": f"lowered from {r.previous_tier} after consecutive lower periods",
                   "held": f"lower score held at {r.previous_tier} ({r.clean_streak} clean "
                           "period(s) so far)"}[r.change]
        pts = {c: getattr(r, f"pts_{c}") for c in COMPONENTS}
        top = [c for c, v in sorted(pts.items(), key=lambda kv: -kv[1]) if v > 0][:3]
        comp_zh = "、".join(f"{COMPONENT_NAMES[c][0]}{pts[c]:.0f}分" for c in top)
        comp_en = ", ".join(f"{COMPONENT_NAMES[c][1]} {pts[c]:.0f}" for c in top)
        z = [head_zh, f"{r.points:.0f}分（{comp_zh or '无'}）", *rz[i]]
        e = [head_en, f"{r.points:.0f} points ({comp_en or 'none'})", *re_[i]]
        if r.facility_id in model_reasons:
            z.append(model_reasons[r.facility_id][0])
            e.append(model_reasons[r.facility_id][1])
        zh_out.append(f"{tz}（{TIER_NAMES[r.tier][1]}）：" + "；".join(z))
        en_out.append(f"{r.tier} ({te}): " + "; ".join(e))
    df["reason_zh"], df["reason_en"] = zh_out, en_out


def _model_reasons(ws: Workspace, ids: pd.Series, inputs: tuple | None = None
                   ) -> dict[str, tuple[str, str]]:
    """Top facility-model indicators (SHAP) of the given facilities.

    ``inputs`` (X, ids, peer groups) are the period's model inputs when it was cut; without
    them the inputs of the last training run are explained.
    """
    if ids.empty:
        return {}
    if inputs is not None:
        from fraudscan.models import load_model
        from fraudscan.models.explain import explain as shap_reasons

        X, all_ids, peer = inputs
        pick = np.isin(all_ids, list(ids.astype(str)))
        rs = shap_reasons(load_model(ws, "facility"), X[pick].reset_index(drop=True),
                          peer[pick], "facility", top=2)
        rows = dict(zip(all_ids[pick], rs, strict=True))
    else:
        from fraudscan.suspects import explain_rows

        rows = explain_rows(ws, "facility", list(ids), top=2)
    return {k: ("；".join(r.zh for r in v), "; ".join(r.en for r in v)) for k, v in rows.items()}
