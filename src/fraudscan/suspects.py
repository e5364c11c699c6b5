"""Ranked suspect lists — facilities, staff, persons, rings (and claims) — with reasons.

>>> from fraudscan.suspects import suspects, export
>>> df = suspects("W", "facility", top=20, district="D2", by="expected")
>>> export(df, "facilities.xlsx")

Screening leads (:func:`ranked_leads`) are ranked by lead score × model risk and cut to the
inspection budget for leads (:data:`LEAD_BUDGET`): a fixed capacity per 10,000 insured, shared
across the screening models by quota so that every thematic check (专项检查) gets its share.

Ranked by expected recoverable amount (risk × money at stake: rule-flagged plus lead amounts,
capped at the fund paid, else 5 % of the fund paid) or by risk alone. Filters: district,
scenario (a screening detector that named the entity; detector names are the scenario names),
facility type and grade (the facility's tier from the latest grading). Reasons are computed
only for the rows returned (SHAP, :mod:`fraudscan.models.explain`), in Chinese and English.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fraudscan.errors import FraudscanError
from fraudscan.workspace import Workspace

KINDS = ("facility", "staff", "person", "ring", "claim")
ID_COLUMN = {"facility": "facility_id", "staff": "staff_id", "person": "person_id",
             "ring": "ring_id", "claim": "settlement_id"}
SUBJECT_OF_LEAD = {"settlement": "claim", "facility": "facility", "staff": "staff",
                   "person": "person", "ring": "ring"}


class SuspectError(FraudscanError):
    """A suspect list cannot be produced as asked."""


@dataclass(frozen=True)
class LeadBudget:
    """The inspection capacity for screening leads and how it is shared across screening models.

    A fixed, documented capacity — never tuned per scenario from labels:

    * ``per_10k_insured`` leads per 10,000 insured persons (default 100: 200 leads for a
      20,000-person pool, 1,000 for 100,000), at least ``minimum`` (default 50);
    * ``allocation="quota"`` (default): the budget is shared across the screening models that
      produced leads in proportion to ``weights`` (default 1 each, i.e. an equal share per
      model, like one thematic check per model); each model fills its quota with its own best
      leads by inspection priority; quota a model cannot fill (it has fewer leads) is
      redistributed to the others in the same proportions; odd slots go to the models with the
      largest fractional shares, ties to the better lead. ``allocation="priority"``: one global
      ranking by priority (the pre-quota behaviour; the high-money schemes fill the list).
    """

    per_10k_insured: float = 100.0
    minimum: int = 50
    allocation: str = "quota"
    weights: Mapping[str, float] = field(default_factory=dict)

    def size(self, insured: int) -> int:
        """Leads the budget covers for ``insured`` persons."""
        return max(int(self.minimum), round(self.per_10k_insured * insured / 10_000))


LEAD_BUDGET = LeadBudget()
"""The default lead budget (the one place to change it); see :class:`LeadBudget`."""


def allocate_quota(detectors: Sequence[str], k: int,
                   weights: Mapping[str, float] | None = None) -> dict[str, int]:
    """Slots per detector when ``k`` slots are shared by quota among the given leads' detectors.

    ``detectors`` is the detector of every candidate lead, best lead first (the order breaks
    ties for odd slots). Weighted water-filling: each round gives every detector that still has
    unused leads its weighted share of the remaining slots (floored, capped at what it has);
    when no detector gets a whole slot the odd slots go one each to the largest fractional
    shares. Detectors with weight 0 get nothing.
    """
    weights = weights or {}
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, d in enumerate(detectors):
        counts[d] = counts.get(d, 0) + 1
        first.setdefault(d, i)
    quota = dict.fromkeys(counts, 0)
    w = {d: float(weights.get(d, 1.0)) for d in counts}
    remaining = min(int(k), sum(c for d, c in counts.items() if w[d] > 0))
    while remaining > 0:
        active = [d for d in counts if w[d] > 0 and quota[d] < counts[d]]
        total = sum(w[d] for d in active)
        share = {d: remaining * w[d] / total for d in active}
        give = {d: min(counts[d] - quota[d], math.floor(share[d])) for d in active}
        if not any(give.values()):
            order = sorted(active, key=lambda d: (-(share[d] - math.floor(share[d])),
                                                  first[d]))
            give = dict.fromkeys(order[:remaining], 1)
        for d, g in give.items():
            quota[d] += g
            remaining -= g
    return quota


def insured_count(workspace: Workspace | str | os.PathLike[str]) -> int:
    """Insured persons in the workspace (the pool the lead budget scales with)."""
    from fraudscan.models.data import query

    df = query(_ws(workspace), "SELECT count(*) AS n FROM persons", needs=["persons"])
    return int(df["n"].iloc[0]) if df is not None and len(df) else 0


def _ws(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else Workspace(workspace)


def explain_rows(workspace: Workspace | str | os.PathLike[str], kind: str, ids: Sequence[str],
                 top: int = 3) -> dict[str, list]:
    """Reasons (list of :class:`~fraudscan.models.explain.Reason`) for the given entity ids."""
    from fraudscan.models import load_model, read_inputs
    from fraudscan.models.explain import explain

    ws = _ws(workspace)
    model = load_model(ws, kind)
    X, got, peer = read_inputs(ws, kind, ids)
    reasons = explain(model, X, peer, kind, top=top)
    return dict(zip(got, reasons, strict=True))


def explain_lead(workspace: Workspace | str | os.PathLike[str], lead_id: str,
                 top: int = 3) -> dict:
    """Reasons for one screening lead: its subject's model reasons plus the lead's evidence."""
    from fraudscan.models.data import query

    ws = _ws(workspace)
    lid = lead_id.replace("'", "''")
    df = query(ws, f"SELECT * FROM leads WHERE lead_id = '{lid}'", needs=["leads"])
    if df is None or df.empty:
        raise SuspectError(f"no lead {lead_id!r} in {ws.path}")
    lead = df.iloc[0]
    kind = SUBJECT_OF_LEAD.get(str(lead["subject_type"]), "facility")
    sid = str(lead["subject_id"])
    reasons = explain_rows(ws, kind, [sid], top=top).get(sid, [])
    return {"lead_id": lead_id, "detector": lead["detector"], "subject_type": kind,
            "subject_id": sid, "score": float(lead["score"]),
            "amount": float(lead["amount"]) if pd.notna(lead["amount"]) else None,
            "evidence": lead["evidence"],
            "reasons": [r.__dict__ for r in reasons],
            "reason_zh": "；".join(r.zh for r in reasons),
            "reason_en": "; ".join(r.en for r in reasons)}


def ranked_leads(workspace: Workspace | str | os.PathLike[str],
                 top: int | str | None = "budget", *, reasons: bool = False,
                 budget: LeadBudget | None = None,
                 risk_column: str = "risk_score") -> pd.DataFrame:
    """Screening leads ranked for inspection: lead score × model risk of the lead's subject.

    Settlement leads take the highest claim risk among their settlements; other leads the
    risk of their person, staff member, facility or ring. ``expected_recoverable`` is the
    priority × the lead's amount.

    ``top="budget"`` (default) returns the inspection budget for leads: ``budget.size`` of the
    insured count (default :data:`LEAD_BUDGET`, 100 per 10,000 insured), chosen by the
    budget's allocation (default: a quota per screening model, see :class:`LeadBudget`);
    ``top=N`` the same selection for N leads; ``top=None`` every lead. The selected leads are
    listed best first by priority; ``detector_rank`` is a lead's rank within its own screening
    model. ``risk_column="oof_risk"`` takes the out-of-fold model risk where there is one
    (evaluation: no subject's risk comes from a model that saw its label).
    """
    from fraudscan.models import read_scores
    from fraudscan.models.data import query

    ws = _ws(workspace)
    leads = query(ws, "SELECT * FROM leads", needs=["leads"])
    if leads is None or leads.empty:
        return pd.DataFrame(columns=["rank", "lead_id", "detector", "subject_type",
                                     "subject_id", "facility_id", "priority"])
    risk: dict[tuple[str, str], float] = {}
    for kind, st in (("claim", "settlement"), ("person", "person"), ("staff", "staff"),
                     ("facility", "facility"), ("ring", "ring")):
        try:
            sc = read_scores(ws, kind)
        except FraudscanError:
            continue
        r_ = sc["risk_score"].astype(float)
        if risk_column != "risk_score" and risk_column in sc.columns:
            r_ = sc[risk_column].astype(float).where(sc[risk_column].notna(), r_)
        risk.update({(st, str(i)): float(r) for i, r in zip(sc["id"], r_, strict=True)})

    def subject_risk(r: pd.Series) -> float:
        if r["subject_type"] == "settlement" or r["settlement_ids"] is not None:
            ids = list(r["settlement_ids"]) if r["settlement_ids"] is not None else []
            vals = [risk.get(("settlement", str(x)), np.nan) for x in ids]
            if r["subject_type"] == "settlement":
                vals.append(risk.get(("settlement", str(r["subject_id"])), np.nan))
            claim = np.nanmax(vals) if np.isfinite(vals).any() else np.nan
        else:
            claim = np.nan
        own = risk.get((str(r["subject_type"]), str(r["subject_id"])), np.nan)
        both = [v for v in (own, claim) if np.isfinite(v)]
        return max(both) if both else 0.5

    leads["model_risk"] = leads.apply(subject_risk, axis=1)
    leads["priority"] = leads["score"].astype(float) * leads["model_risk"]
    leads["expected_recoverable"] = leads["priority"] * pd.to_numeric(
        leads["amount"], errors="coerce").fillna(0.0)
    leads = leads.sort_values(["priority", "expected_recoverable", "lead_id"],
                              ascending=[False, False, True], kind="stable")
    leads = leads.reset_index(drop=True)
    leads["detector_rank"] = leads.groupby("detector", sort=False).cumcount() + 1
    if top is not None:
        b = budget or LEAD_BUDGET
        if isinstance(top, str):
            if top != "budget":
                raise SuspectError('top must be a number, None or "budget"')
            k = b.size(insured_count(ws))
        else:
            k = int(top)
        if b.allocation == "quota":
            quota = allocate_quota(list(leads["detector"].astype(str)), k, b.weights)
            keep = leads["detector_rank"] <= leads["detector"].astype(str).map(quota)
            leads = leads[keep.to_numpy()]
        elif b.allocation == "priority":
            leads = leads.head(k)
        else:
            raise SuspectError("allocation must be quota or priority")
        leads = leads.reset_index(drop=True)
    leads.insert(0, "rank", np.arange(1, len(leads) + 1))
    if reasons and len(leads):
        texts = [explain_lead(ws, lid) for lid in leads["lead_id"]]
        leads["reason_zh"] = [t["reason_zh"] for t in texts]
        leads["reason_en"] = [t["reason_en"] for t in texts]
    return leads


def _grades(ws: Workspace) -> pd.Series:
    from fraudscan.grading import read_history

    h = read_history(ws)
    if h.empty:
        return pd.Series(dtype=object)
    last = h[h["period"] == h["period"].max()]
    return last.set_index("facility_id")["tier"]


def suspects(
    workspace: Workspace | str | os.PathLike[str],
    kind: str = "facility",
    *,
    top: int | None = 50,
    by: str = "expected",
    district: str | Sequence[str] | None = None,
    scenario: str | Sequence[str] | None = None,
    facility_type: str | Sequence[str] | None = None,
    grade: str | Sequence[str] | None = None,
    reasons: bool = True,
    n_reasons: int = 3,
) -> pd.DataFrame:
    """The ranked list of ``kind`` (``top=None`` for all) with scores, money and reasons."""
    from fraudscan.models import read_scores

    ws = _ws(workspace)
    if kind not in KINDS:
        raise SuspectError(f"kind must be one of {', '.join(KINDS)}")
    if by not in ("expected", "risk"):
        raise SuspectError("by must be expected or risk")
    df = read_scores(ws, kind).copy()
    id_col = ID_COLUMN[kind]
    df[id_col] = df["id"].astype(str)
    g = _grades(ws)
    fac = df["facility_id"].astype(str) if "facility_id" in df.columns else df[id_col]
    df["grade"] = fac.map(g).fillna("") if len(g) else ""
    for col, val in (("district", district), ("facility_type", facility_type),
                     ("grade", grade)):
        if val is not None and col in df.columns:
            vals = [val] if isinstance(val, str) else list(val)
            df = df[df[col].astype(str).isin(vals)]
    if scenario is not None:
        want = {scenario} if isinstance(scenario, str) else set(scenario)
        det = df.get("detectors", pd.Series("", index=df.index)).fillna("").astype(str)
        df = df[det.map(lambda s: bool(want & set(s.split(";"))))]
    key = "expected_recoverable" if by == "expected" else "risk_score"
    df = df.sort_values([key, "risk_score"], ascending=False, kind="stable")
    if top is not None:
        df = df.head(int(top))
    df = df.reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    if reasons and len(df):
        rs = explain_rows(ws, kind, list(df[id_col]), top=n_reasons)
        df["reason_zh"] = [_join(rs.get(i, []), "zh", "；") for i in df[id_col]]
        df["reason_en"] = [_join(rs.get(i, []), "en", "; ") for i in df[id_col]]
    cols = ["rank", id_col, "name", "district", "facility_type", "facility_id", "grade",
            "risk_score", "amount_at_stake", "expected_recoverable", "detectors", "ring_id",
            "reason_zh", "reason_en"]
    cols = list(dict.fromkeys(c for c in cols if c in df.columns))
    return df[cols].rename(columns={"detectors": "scenarios"})


def _join(reasons: list, lang: str, sep: str) -> str:
    return sep.join(getattr(r, lang) for r in reasons)


def export(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a suspect list as CSV (UTF-8 with BOM, opens in Excel) or XLSX by extension."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".xlsx":
        df.to_excel(p, index=False, sheet_name="suspects")
    elif p.suffix.lower() in (".csv", ".txt", ""):
        df.to_csv(p, index=False, encoding="utf-8-sig")
    else:
        raise SuspectError(f"unknown export format {p.suffix!r}; use .csv or .xlsx")
    return p
