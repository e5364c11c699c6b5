"""Screening models (BRIEF §2.2): named detectors that turn a workspace into leads with evidence.

>>> import fraudscan.leads as leads
>>> df = leads.run("W")                                  # every detector, default thresholds
>>> df = leads.run("W", detectors=["split_admission"], config="my_thresholds.yaml")

Each lead names its subject (facility, staff, person, settlement or ring), period, a score in
[0, 1] (0.5 at the threshold, rising to 1 at twice it), the amount involved, the numbers that
fired (``evidence``, JSON) and the claims behind it (``settlement_ids``). Results go to the
``leads`` table of the workspace DuckDB (rows of re-run detectors are replaced) and a log of the
run to ``lead_runs`` (detector, status, leads, seconds, note — a skipped detector says why).
Detector names equal the synthetic scenario names in ``labels.scenario``, so
:func:`evaluate` scores leads against labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from fraudscan.leads.config import ConfigError, default_config, load_config
from fraudscan.leads.registry import (
    LEAD_COLUMNS,
    SUBJECT_TYPES,
    Context,
    Detector,
    SkipDetector,
    all_detectors,
)
from fraudscan.workspace import Workspace

__all__ = [
    "LEAD_COLUMNS",
    "ConfigError",
    "Detector",
    "all_detectors",
    "default_config",
    "evaluate",
    "load_config",
    "read_leads",
    "run",
]

LEADS_DDL = """CREATE TABLE IF NOT EXISTS leads (
    lead_id VARCHAR, detector VARCHAR, subject_type VARCHAR, subject_id VARCHAR,
    facility_id VARCHAR, period VARCHAR, score DOUBLE, amount DOUBLE, evidence VARCHAR,
    settlement_ids VARCHAR[])"""
RUNS_DDL = """CREATE TABLE IF NOT EXISTS lead_runs (
    detector VARCHAR, status VARCHAR, leads BIGINT, seconds DOUBLE, note VARCHAR,
    run_at TIMESTAMP)"""


def _workspace(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    return ws.require()


def _nonempty_tables(con: Any, ws: Workspace) -> frozenset[str]:
    present = []
    for name in ws.present_tables():
        if con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT 1)").fetchone()[0]:
            present.append(name)
    return frozenset(present)


def _finish(df: pd.DataFrame, det: Detector) -> pd.DataFrame:
    """Validate a detector's frame and add ``lead_id`` and ``detector``."""
    if df is None or df.empty:
        return pd.DataFrame(columns=list(LEAD_COLUMNS))
    missing = [c for c in LEAD_COLUMNS[2:] if c not in df.columns]
    if missing:
        raise RuntimeError(f"detector {det.name} returned no {missing}")
    bad = set(df["subject_type"]) - set(SUBJECT_TYPES)
    if bad:
        raise RuntimeError(f"detector {det.name} returned subject types {bad}")
    out = df[list(LEAD_COLUMNS[2:])].copy()
    out["detector"] = det.name
    out["score"] = out["score"].astype(float).clip(0, 1).round(4)
    out["amount"] = out["amount"].astype(float).fillna(0.0).round(2)
    out["period"] = out["period"].fillna("").astype(str)
    out["settlement_ids"] = out["settlement_ids"].map(
        lambda v: [str(x) for x in v if x is not None] if v is not None else [])

    def lead_id(r: pd.Series) -> str:
        key = f"{det.name}|{r.subject_type}|{r.subject_id}|{r.period}|{r.evidence}"
        return f"{det.name}:{hashlib.sha1(key.encode()).hexdigest()[:12]}"

    out["lead_id"] = out.apply(lead_id, axis=1)
    out = out.drop_duplicates("lead_id")
    return out[list(LEAD_COLUMNS)].sort_values(["score", "amount"], ascending=False,
                                               ignore_index=True)


def run(
    workspace: Workspace | str | os.PathLike[str],
    detectors: Iterable[str] | None = None,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    write: bool = True,
) -> pd.DataFrame:
    """Run screening models on a workspace and return their leads (best first per detector).

    ``detectors`` names a subset (default: all); ``config`` is a thresholds YAML path or mapping
    merged over the packaged defaults. With ``write`` the leads replace those detectors' rows in
    the workspace's ``leads`` table. ``df.attrs["runs"]`` holds the per-detector log.
    """
    ws = _workspace(workspace)
    cfg = load_config(config)
    registry = all_detectors()
    names = list(registry) if detectors is None else list(detectors)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ConfigError(f"unknown detectors {unknown}; known: {', '.join(registry)}")
    frames, runs = [], []
    with ws.connect() as con:
        tables = _nonempty_tables(con, ws)
        for name in names:
            det = registry[name]
            t0 = time.perf_counter()
            ctx = Context(con=con, cfg=cfg.get(name, {}), common=cfg["common"], tables=tables)
            missing = [t for t in det.requires if t not in tables]
            status, note, df = "ok", "", None
            if missing:
                status, note = "skipped", f"needs {', '.join(missing)} (absent or empty)"
            else:
                try:
                    df = _finish(det.fn(ctx), det)
                except SkipDetector as e:
                    status, note = "skipped", str(e)
            if ctx.notes:
                note = "; ".join([note, *ctx.notes]) if note else "; ".join(ctx.notes)
            n = 0 if df is None else len(df)
            runs.append({"detector": name, "status": status, "leads": n,
                         "seconds": round(time.perf_counter() - t0, 3), "note": note})
            if df is not None and n:
                frames.append(df)
        leads = (pd.concat(frames, ignore_index=True) if frames
                 else pd.DataFrame(columns=list(LEAD_COLUMNS)))
        if write:
            _write(con, leads, names, runs)
    leads.attrs["runs"] = runs
    return leads


def _write(con: Any, leads: pd.DataFrame, names: list[str], runs: list[dict]) -> None:
    con.execute(LEADS_DDL)
    con.execute(RUNS_DDL)
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM leads WHERE list_contains(?, detector)", [names])
        con.execute("DELETE FROM lead_runs WHERE list_contains(?, detector)", [names])
        if len(leads):
            con.register("_new_leads", leads)
            con.execute("INSERT INTO leads SELECT lead_id, detector, subject_type, subject_id, "
                        "facility_id, period, score, amount, evidence, "
                        "CAST(settlement_ids AS VARCHAR[]) FROM _new_leads")
            con.unregister("_new_leads")
        runs_df = pd.DataFrame(runs)
        con.register("_new_runs", runs_df)
        con.execute("INSERT INTO lead_runs SELECT detector, status, leads, seconds, note, "
                    "now()::TIMESTAMP FROM _new_runs")
        con.unregister("_new_runs")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def read_leads(
    workspace: Workspace | str | os.PathLike[str], detector: str | None = None
) -> pd.DataFrame:
    """The stored ``leads`` table (empty when no detector has run yet)."""
    ws = _workspace(workspace)
    with ws.connect() as con:
        has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'leads' "
                          "AND database_name = current_database()").fetchone()[0]
        if not has:
            return pd.DataFrame(columns=list(LEAD_COLUMNS))
        where, params = ("WHERE detector = ?", [detector]) if detector else ("", [])
        return con.execute(f"SELECT * FROM leads {where} ORDER BY detector, score DESC, "
                           "amount DESC", params).df()


def evaluate(
    workspace: Workspace | str | os.PathLike[str], leads: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Recall and precision of each detector against ``labels`` (scenario = detector name).

    A labelled entity counts as found when a lead of the same-named detector covers it: a
    settlement label through the lead's ``settlement_ids``, a person/staff/facility label through
    the lead's subject, its facility, or the person/doctor of a listed claim. A lead is a true
    positive when it covers any fraud entity of its scenario (``precision_any_fraud``: of any
    scenario). Decoys (``is_fraud`` false, scenario ``decoy`` or the detector's) that a lead
    covers are counted as ``decoys_hit``.
    """
    ws = _workspace(workspace)
    if leads is None:
        leads = read_leads(ws)
    labels = ws.read_table("labels")
    names = list(all_detectors())
    rows = []
    af = labels[labels["is_fraud"].astype(bool)]
    all_fraud = set(zip(af["entity_type"], af["entity_id"].astype(str), strict=True))
    if leads.empty:
        leads = pd.DataFrame(columns=list(LEAD_COLUMNS))
    sett = ws.read_table("settlements", ["settlement_id", "person_id", "facility_id",
                                         "attending_staff_id"]).set_index("settlement_id")
    for name in names:
        lab = labels[(labels["scenario"] == name)
                     | ((labels["scenario"] == "decoy") & ~labels["is_fraud"].astype(bool))]
        ld = leads[leads["detector"] == name]
        covered_by_lead: list[set[tuple[str, str]]] = []
        for r in ld.itertuples(index=False):
            cov = {(str(r.subject_type), str(r.subject_id))}
            if r.facility_id is not None and r.facility_id == r.facility_id:
                cov.add(("facility", str(r.facility_id)))
            sids = [s for s in (r.settlement_ids if r.settlement_ids is not None else [])]
            for s in sids:
                cov.add(("settlement", str(s)))
            known = sett.reindex([s for s in sids if s in sett.index])
            cov.update(("person", p) for p in known["person_id"].dropna())
            cov.update(("staff", p) for p in known["attending_staff_id"].dropna())
            cov.update(("facility", p) for p in known["facility_id"].dropna())
            covered_by_lead.append(cov)
        covered = set().union(*covered_by_lead) if covered_by_lead else set()
        fraud = lab[lab["is_fraud"].astype(bool)]
        clean = lab[~lab["is_fraud"].astype(bool)]
        fkeys = set(zip(fraud["entity_type"], fraud["entity_id"].astype(str), strict=True))
        ckeys = set(zip(clean["entity_type"], clean["entity_id"].astype(str), strict=True))
        hit = len(fkeys & covered)
        tp = sum(1 for cov in covered_by_lead if cov & fkeys)
        tp_any = sum(1 for cov in covered_by_lead if cov & all_fraud)
        rows.append({
            "detector": name,
            "labelled": len(fkeys),
            "found": hit,
            "recall": hit / len(fkeys) if fkeys else float("nan"),
            "leads": len(ld),
            "true_leads": tp,
            "precision": tp / len(ld) if len(ld) else float("nan"),
            "precision_any_fraud": tp_any / len(ld) if len(ld) else float("nan"),
            "decoys": len(ckeys),
            "decoys_hit": len(ckeys & covered),
        })
    return pd.DataFrame(rows)


def evidence(lead: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    """Parse a lead's evidence JSON."""
    return json.loads(lead["evidence"])
