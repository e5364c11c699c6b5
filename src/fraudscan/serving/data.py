"""What the workbench and the read endpoints show, read from the workspace.

Leads, rings, rule findings and facility indicators are read from the workspace's DuckDB (opened
read-only, briefly) into memory and re-read when the DuckDB file changes, so the service never
holds a lock that would stop ``fraudscan leads`` or ``graph build`` from writing. Case outcomes
are written to ``W/serve/outcomes.sqlite`` (``synchronous=FULL``: an acknowledged outcome
survives a crash) unless :mod:`fraudscan.outcomes` provides the store.

Where :mod:`fraudscan.suspects` / :mod:`fraudscan.grading` are installed their suspect lists and
grades are used; otherwise suspects are the screening leads and the grade is derived from the
facility's leads (``source: "leads"`` says so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from fraudscan import schema
from fraudscan.serving.access import serve_dir
from fraudscan.workspace import Workspace, attach_views

log = logging.getLogger("fraudscan.serving")

OUTCOMES = ("confirmed", "partly_confirmed", "not_confirmed", "referred", "in_progress")
GRADES = ("A", "B", "C", "D")


class NotFound(LookupError):
    """An unknown id (→ 404)."""


def _tables(con: Any) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()}


def _clean(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, np.generic):
        return _clean(v.item())
    if isinstance(v, pd.Timestamp | datetime | date):
        return v.isoformat()
    if isinstance(v, np.ndarray):
        return [_clean(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def _open_read_only(path: Path, tries: int = 5) -> Any:
    for i in range(tries):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            time.sleep(0.1 * (i + 1))
    return None


def grade_of(risk: float) -> str:
    return "A" if risk < 0.2 else "B" if risk < 0.5 else "C" if risk < 0.8 else "D"


INDICATORS = {
    # key: (zh, en, SQL over settlements s of one facility)
    "claims": ("结算笔数", "claims", "count(*)"),
    "amount_per_claim": ("次均费用", "amount per claim", "avg(s.total_amount)"),
    "inpatient_share": ("住院占比", "inpatient share",
                        "avg(CASE WHEN s.medical_type LIKE '2%' THEN 1.0 ELSE 0.0 END)"),
    "los_days": ("平均住院日", "mean length of stay (days)",
                 "avg(CASE WHEN s.medical_type LIKE '2%' THEN date_diff('hour', "
                 "s.admission_time, s.discharge_time) / 24.0 END)"),
    "claims_per_person": ("人次人头比", "claims per person",
                          "count(*) / greatest(count(DISTINCT s.person_id), 1)"),
    "lines_per_claim": ("次均明细数", "fee lines per claim", "avg(fl.n)"),
    "drug_share": ("药占比", "drug share", "sum(fl.drug) / nullif(sum(fl.amt), 0)"),
}


class OutcomeStore:
    """Case outcomes recorded by inspectors (SQLite, fsync on every commit)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outcomes (outcome_id TEXT PRIMARY KEY, lead_id TEXT, "
            "subject_type TEXT, subject_id TEXT, facility_id TEXT, district TEXT, "
            "outcome TEXT NOT NULL, amount_recovered REAL, note TEXT, recorded_by TEXT, "
            "recorded_at TEXT NOT NULL)")
        self._lock = threading.Lock()

    def record(self, rec: dict[str, Any]) -> dict[str, Any]:
        rec = {"outcome_id": "O" + uuid.uuid4().hex[:12],
               "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"), **rec}
        cols = ("outcome_id", "lead_id", "subject_type", "subject_id", "facility_id", "district",
                "outcome", "amount_recovered", "note", "recorded_by", "recorded_at")
        with self._lock:
            self._db.execute(f"INSERT INTO outcomes ({','.join(cols)}) VALUES "
                             f"({','.join('?' * len(cols))})", [rec.get(c) for c in cols])
        return {c: rec.get(c) for c in cols}

    def list(self, lead_id: str | None = None, facility_id: str | None = None
             ) -> list[dict[str, Any]]:
        where, params = [], []
        if lead_id:
            where.append("lead_id = ?")
            params.append(lead_id)
        if facility_id:
            where.append("facility_id = ?")
            params.append(facility_id)
        sql = "SELECT * FROM outcomes" + (" WHERE " + " AND ".join(where) if where else "") + \
            " ORDER BY recorded_at DESC, rowid DESC"
        with self._lock:
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def latest_by_lead(self) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute("SELECT lead_id, outcome FROM outcomes WHERE lead_id IS NOT "
                                    "NULL ORDER BY recorded_at, rowid").fetchall()
        return {lid: o for lid, o in rows}

    def close(self) -> None:
        self._db.close()


class WorkspaceData:
    """In-memory snapshot of the workspace's derived tables, refreshed when they change."""

    def __init__(self, workspace: Workspace):
        self.ws = workspace
        self.outcomes = OutcomeStore(serve_dir(workspace.path) / "outcomes.sqlite")
        self._lock = threading.Lock()
        self._stamp: tuple[float, float] | None = None
        self._checked = 0.0
        self.loaded_at: float | None = None
        self.refresh(force=True)

    # -- loading ------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[float, float]:
        out = []
        for p in (self.ws.db_path, self.ws.db_path.with_name(self.ws.db_path.name + ".wal")):
            try:
                out.append(p.stat().st_mtime)
            except FileNotFoundError:
                out.append(0.0)
        return out[0], out[1]

    def refresh(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._checked < 2.0:
            return False
        self._checked = now
        stamp = self._file_stamp()
        if not force and stamp == self._stamp:
            return False
        with self._lock:
            self._load()
            self._stamp = stamp
            self.loaded_at = time.time()
        return True

    def _load(self) -> None:
        ws = self.ws
        fac = ws.read_table("facilities")
        self.facilities = fac.set_index("facility_id", drop=False)
        persons = ws.read_table("persons", columns=["person_id", "district"]) \
            if "district" in schema.table("persons").column_names else pd.DataFrame()
        self.person_district = dict(zip(persons.get("person_id", []),
                                        persons.get("district", []), strict=True))
        leads = pd.DataFrame()
        rings = members = findings = pd.DataFrame()
        if ws.db_path.exists():  # derived tables; never create or lock the file for writing
            con = _open_read_only(ws.db_path)
            if con is None:
                if hasattr(self, "leads"):
                    return  # a writer holds the file: keep the previous snapshot
            else:
                try:
                    tabs = _tables(con)
                    if "leads" in tabs:
                        leads = con.execute("SELECT * FROM leads").df()
                    if "rings" in tabs:
                        rings = con.execute("SELECT * FROM rings ORDER BY score DESC, "
                                            "ring_id").df()
                    if "ring_members" in tabs:
                        members = con.execute("SELECT * FROM ring_members").df()
                    if "rule_findings" in tabs:
                        findings = con.execute(
                            "SELECT facility_id, rule_id, any_value(action) AS action, "
                            "any_value(severity) AS severity, any_value(message) AS message, "
                            "count(*) AS findings, count(DISTINCT settlement_id) AS claims, "
                            "sum(amount) AS amount FROM rule_findings GROUP BY ALL").df()
                finally:
                    con.close()
        self.rings, self.ring_members, self.findings = rings, members, findings
        mem = duckdb.connect()
        try:
            attach_views(mem, ws)
            self.indicators = self._indicators(mem)
        finally:
            mem.close()
        self.leads = self._prepare_leads(leads)
        self._grades = self._grade_frames()

    def _indicators(self, con: Any) -> pd.DataFrame:
        has_lines = self.ws.has_table("fee_lines")
        drug = ",".join(f"'{c}'" for c in schema.DRUG_CLASSES)
        fl = ("(SELECT f.settlement_id, count(*) AS n, sum(f.amount) AS amt, "
              f"sum(CASE WHEN c.item_class IN ({drug}) THEN f.amount ELSE 0 END) AS drug "
              "FROM fee_lines f LEFT JOIN catalogue c USING (item_code) GROUP BY 1)") \
            if has_lines else \
            "(SELECT NULL::VARCHAR AS settlement_id, 0 AS n, 0.0 AS amt, 0.0 AS drug WHERE false)"
        sel = ", ".join(f"{sql} AS {k}" for k, (_, _, sql) in INDICATORS.items())
        df = con.execute(f"SELECT s.facility_id, {sel} FROM settlements s LEFT JOIN {fl} fl "
                         "USING (settlement_id) GROUP BY s.facility_id").df()
        return df.set_index("facility_id")

    def _district_of(self, facility_id: Any, subject_type: str, subject_id: Any) -> Any:
        if facility_id is not None and facility_id in self.facilities.index:
            return self.facilities.at[facility_id, "district"] \
                if "district" in self.facilities else None
        if subject_type == "person":
            return self.person_district.get(subject_id)
        return None

    def _prepare_leads(self, leads: pd.DataFrame) -> pd.DataFrame:
        if not leads.empty:
            try:  # inspection priority = lead score × model risk of its subject
                import fraudscan.suspects as sus

                ranked = sus.ranked_leads(self.ws, top=None)
                if "priority" in ranked and len(ranked) == len(leads):
                    leads = ranked.drop(columns=["rank"], errors="ignore")
            except Exception:
                log.info("suspect priorities unavailable; ranking by lead score")
        if leads.empty:
            return pd.DataFrame(columns=["lead_id", "detector", "subject_type", "subject_id",
                                         "facility_id", "period", "score", "amount", "evidence",
                                         "settlement_ids", "district", "facility_name",
                                         "priority"])
        leads = leads.copy()
        leads["facility_id"] = leads["facility_id"].where(leads["facility_id"].notna(), None)
        leads["district"] = [self._district_of(f, t, s) for f, t, s in zip(
            leads["facility_id"], leads["subject_type"], leads["subject_id"], strict=True)]
        names = self.facilities["facility_name"].to_dict() if len(self.facilities) else {}
        leads["facility_name"] = leads["facility_id"].map(names)
        if "priority" not in leads:
            leads["priority"] = leads["score"].astype(float)
        leads = leads.sort_values(["priority", "score", "amount", "lead_id"],
                                  ascending=[False, False, False, True])
        return leads.set_index("lead_id", drop=False)

    def _grade_frames(self) -> pd.DataFrame:
        lf = self.leads[self.leads["facility_id"].notna()]
        rows = []
        for (fid, period), g in lf.groupby(["facility_id", "period"], dropna=False):
            risk = 1.0 - float(np.prod(1.0 - np.clip(g["score"].astype(float), 0, 0.99) * 0.5))
            rows.append({"facility_id": fid, "period": period, "risk": round(risk, 4),
                         "grade": grade_of(risk), "leads": len(g),
                         "amount": float(g["amount"].fillna(0).sum())})
        return pd.DataFrame(rows, columns=["facility_id", "period", "risk", "grade", "leads",
                                           "amount"])

    # -- queries ------------------------------------------------------------------------------
    def lead(self, lead_id: str) -> dict[str, Any]:
        if lead_id not in self.leads.index:
            raise NotFound(f"no lead {lead_id!r}")
        return self.row(self.leads.loc[lead_id])

    @staticmethod
    def row(r: pd.Series) -> dict[str, Any]:
        d = {k: _clean(v) for k, v in r.items()}
        ev = d.get("evidence")
        if isinstance(ev, str):
            with contextlib.suppress(json.JSONDecodeError):
                d["evidence"] = json.loads(ev)
        return d

    def facility(self, facility_id: str) -> dict[str, Any]:
        if facility_id not in self.facilities.index:
            raise NotFound(f"no facility {facility_id!r}")
        return {k: _clean(v) for k, v in self.facilities.loc[facility_id].items()}

    def grade(self, facility_id: str) -> dict[str, Any]:
        self.facility(facility_id)
        hist = self.grade_history(facility_id)
        if hist["history"]:
            cur = hist["history"][-1]
        else:
            cur = {"period": None, "risk": 0.0, "grade": "A", "leads": 0, "amount": 0.0}
        return {"facility_id": facility_id, **cur, "source": hist["source"]}

    def grade_history(self, facility_id: str) -> dict[str, Any]:
        self.facility(facility_id)
        h = self._official_grades()
        if h is not None:
            mine = h[h["facility_id"].astype(str) == facility_id].sort_values("period")
            cols = [c for c in ("period", "tier", "points", "change", "reason_zh", "reason_en")
                    if c in mine]
            return {"facility_id": facility_id, "source": "grading",
                    "history": [{**{k: _clean(v) for k, v in r.items()},
                                 "grade": r.get("tier")} for r in mine[cols].to_dict("records")]}
        g = self._grades[self._grades["facility_id"] == facility_id].sort_values("period")
        return {"facility_id": facility_id, "source": "leads",
                "history": [{k: _clean(v) for k, v in r.items() if k != "facility_id"}
                            for r in g.to_dict("records")]}

    def _official_grades(self) -> pd.DataFrame | None:
        """``fraudscan grade`` history (``W/grading/history.parquet``), re-read when it changes."""
        p = self.ws.path / "grading" / "history.parquet"
        try:
            m = p.stat().st_mtime
        except FileNotFoundError:
            return None
        if getattr(self, "_gh_mtime", None) != m:
            try:
                from fraudscan.grading import read_history

                self._gh = read_history(self.ws)
            except Exception:
                log.exception("cannot read grading history")
                self._gh = pd.DataFrame()
            self._gh_mtime = m
        return self._gh if len(self._gh) and "facility_id" in self._gh else None

    def peer_indicators(self, facility_id: str) -> list[dict[str, Any]]:
        f = self.facility(facility_id)
        fac = self.facilities
        peers = fac[(fac["facility_type"] == f.get("facility_type"))]
        if "level" in fac and f.get("level") is not None:
            peers = peers[peers["level"] == f.get("level")]
        ind = self.indicators
        pi = ind[ind.index.isin(peers.index)]
        out = []
        for k, (zh, en, _) in INDICATORS.items():
            v = ind.at[facility_id, k] if facility_id in ind.index else None
            col = pi[k].dropna().astype(float) if k in pi else pd.Series(dtype=float)
            out.append({"indicator": k, "name_zh": zh, "name_en": en, "value": _clean(v),
                        "peer_median": _clean(float(col.median())) if len(col) else None,
                        "peer_p90": _clean(float(col.quantile(0.9))) if len(col) else None,
                        "peers": len(col)})
        return out

    def facility_findings(self, facility_id: str) -> list[dict[str, Any]]:
        if self.findings.empty:
            return []
        f = self.findings[self.findings["facility_id"] == facility_id]
        f = f.sort_values("amount", ascending=False)
        return [{k: _clean(v) for k, v in r.items()} for r in f.to_dict("records")]

    def facility_rings(self, facility_id: str) -> list[dict[str, Any]]:
        if self.ring_members.empty:
            return []
        m = self.ring_members
        ids = set(m[(m["node_type"].isin(["facility", "pharmacy"]))
                    & (m["node_id"] == facility_id)]["ring_id"])
        r = self.rings[self.rings["ring_id"].isin(ids)]
        return [{k: _clean(v) for k, v in x.items()} for x in r.to_dict("records")]

    def ring(self, ring_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if self.rings.empty or ring_id not in set(self.rings["ring_id"]):
            raise NotFound(f"no ring {ring_id!r}")
        r = self.rings[self.rings["ring_id"] == ring_id].iloc[0]
        m = self.ring_members[self.ring_members["ring_id"] == ring_id]
        return ({k: _clean(v) for k, v in r.items()},
                [{k: _clean(v) for k, v in x.items()} for x in m.to_dict("records")])

    def ring_district(self, members: list[dict[str, Any]]) -> set[Any]:
        ds = set()
        for m in members:
            if m["node_type"] in ("facility", "pharmacy") and m["node_id"] in self.facilities.index:
                ds.add(self.facilities.at[m["node_id"], "district"])
        return ds
