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

import numpy as np
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
    "evidence",
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
        lambda v: [str(x) for x in v if x is not None]
        if isinstance(v, list | tuple | np.ndarray) else [])

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
        con.execute("SET enable_progress_bar = false")  # the CLI draws its own
        if cfg["common"].get("duckdb_memory_limit"):
            con.execute("SET memory_limit = ?", [str(cfg["common"]["duckdb_memory_limit"])])
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

    Settlement labels are the unit of recall (every scenario labels its claims; fee-line labels
    are covered through their claim): ``recall`` is the share of the scenario's fraud
    settlements listed by its leads. ``entity_recall`` does the same for labelled persons,
    staff and facilities (found as a lead's subject, its facility, or the person/doctor of a
    listed claim). A lead is true when one of its claims or its subject is a fraud label of
    the scenario (``precision``) or of any scenario (``precision_any_fraud``); a claim carrying
    a fraud-labelled fee line counts as a fraud claim of that line's scenario (the rule-violation
    scenarios R01-R47 label fee lines only). ``false_leads`` counts leads naming no fraud at all
    and ``false_on_decoys`` those of them naming or listing a decoy. ``decoys_hit`` counts decoy
    labels (honest outliers) a detector's leads list or name, also on leads that are right
    (a decoy dialysis heavy user can be an over-billing victim too).
    """
    ws = _workspace(workspace)
    if leads is None:
        leads = read_leads(ws)
    if leads.empty:
        leads = pd.DataFrame(columns=list(LEAD_COLUMNS))
    labels = ws.read_table("labels")
    labels["entity_id"] = labels["entity_id"].astype(str)
    fraud_l = labels[labels["is_fraud"].astype(bool)]
    decoy_l = labels[~labels["is_fraud"].astype(bool)]
    line_l = fraud_l[fraud_l["entity_type"] == "fee_line"]
    if len(line_l) and ws.has_table("fee_lines"):
        with ws.connect(read_only=True) as con:
            con.register("_ll", line_l[["entity_id", "scenario"]])
            via_line = con.execute(
                "SELECT 'settlement' AS entity_type, l.settlement_id AS entity_id, x.scenario "
                "FROM _ll x JOIN fee_lines l ON l.line_id = x.entity_id").df()
        fraud_l = pd.concat([fraud_l, via_line.assign(is_fraud=True, via_line=True)],
                            ignore_index=True)
    all_fraud = set(zip(fraud_l["entity_type"], fraud_l["entity_id"], strict=True))
    decoys = set(zip(decoy_l["entity_type"], decoy_l["entity_id"], strict=True))
    sett = ws.read_table("settlements", ["settlement_id", "person_id", "facility_id",
                                         "attending_staff_id"]).set_index("settlement_id")
    rows = []
    for name in all_detectors():
        lab = fraud_l[fraud_l["scenario"] == name]
        ld = leads[leads["detector"] == name]
        own_sett = lab["entity_type"] == "settlement"
        if "via_line" in lab:  # recall counts the scenario's own claim labels only
            own_sett &= lab["via_line"].isna()
        f_sett = set(lab.loc[own_sett, "entity_id"])
        f_ent = set(zip(lab["entity_type"], lab["entity_id"], strict=True)) - {
            ("settlement", s) for s in f_sett}
        f_ent = {e for e in f_ent if e[0] in ("person", "staff", "facility")}
        listed: set[str] = set()
        touched: set[tuple[str, str]] = set()
        tp = tp_any = false_leads = false_decoy = 0
        for r in ld.itertuples(index=False):
            sids = {str(x) for x in (r.settlement_ids if r.settlement_ids is not None else [])}
            own = {("settlement", s) for s in sids} | {(str(r.subject_type), str(r.subject_id))}
            tp += bool(own & ({("settlement", s) for s in f_sett} | f_ent))
            tp_any += bool(own & all_fraud)
            if not own & all_fraud:
                false_leads += 1
                false_decoy += bool(own & decoys)
            listed |= sids
            touched |= own
            if isinstance(r.facility_id, str):
                touched.add(("facility", r.facility_id))
            known = sett.reindex([s for s in sids if s in sett.index])
            touched.update(("person", p) for p in known["person_id"].dropna())
            touched.update(("staff", p) for p in known["attending_staff_id"].dropna())
            touched.update(("facility", p) for p in known["facility_id"].dropna())
        rows.append({
            "detector": name,
            "labelled": len(f_sett),
            "found": len(f_sett & listed),
            "recall": len(f_sett & listed) / len(f_sett) if f_sett else float("nan"),
            "entities": len(f_ent),
            "entity_recall": len(f_ent & touched) / len(f_ent) if f_ent else float("nan"),
            "leads": len(ld),
            "true_leads": tp,
            "precision": tp / len(ld) if len(ld) else float("nan"),
            "precision_any_fraud": tp_any / len(ld) if len(ld) else float("nan"),
            "false_leads": false_leads,
            "false_on_decoys": false_decoy,
            "decoys_hit": len(decoys & ({("settlement", s) for s in listed}
                                        | set(zip(ld["subject_type"].astype(str),
                                                  ld["subject_id"].astype(str),
                                                  strict=True)))),
        })
    return pd.DataFrame(rows)


def evidence(lead: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    """Parse a lead's evidence JSON."""
    return json.loads(lead["evidence"])
