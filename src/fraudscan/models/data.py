"""Model inputs: one row per entity with numeric features, labels, peer group and CV group.

Every subject model reads its rows through :class:`SubjectFrame`, built from the feature
pipeline (``fraudscan.features.load``) plus the outputs of the other steps when present (rule
findings, screening leads, rings). Labels come from the workspace ``labels`` table and from
inspection outcomes (:mod:`fraudscan.outcomes`), restricted to the sources asked for.

Unlabelled entities: a synthetic world labels only its frauds (and a few decoys), so the rest
are clean; real data (Medicare, inspections) label a sample and leave the rest unknown. With
``train_on="auto"`` the unlabelled rows are treated as clean only when the labels contain fewer
explicit clean rows than half the fraud rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from fraudscan.workspace import Workspace

ALL_SOURCES = ("synthetic", "inspection", "external")


@dataclass
class SubjectFrame:
    """Rows of one subject (facility, person, staff, claim or ring) ready for a model."""

    kind: str
    ids: np.ndarray
    X: pd.DataFrame
    y: np.ndarray
    """1 fraud, 0 clean, NaN unknown (after the unlabelled policy: NaN rows are not trained on)."""
    groups: np.ndarray
    """CV groups: the facility responsible (never split one facility's rows across folds)."""
    peer: np.ndarray
    """Peer-group key for the outlier score and the peer comparisons of reasons."""
    meta: pd.DataFrame
    """Per row: name, district, facility_type, facility_id, amount_at_stake, scenarios."""
    directions: list[int] = field(default_factory=list)
    periods: np.ndarray | None = None
    """Month of the row where rows are per period (claims): for time-grouped evaluation."""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.y)

    def subset(self, mask: np.ndarray) -> SubjectFrame:
        return SubjectFrame(
            kind=self.kind, ids=self.ids[mask], X=self.X[mask].reset_index(drop=True),
            y=self.y[mask], groups=self.groups[mask], peer=self.peer[mask],
            meta=self.meta[mask].reset_index(drop=True), directions=self.directions,
            periods=None if self.periods is None else self.periods[mask])


def query(ws: Workspace, sql: str, needs: Sequence[str] = ()) -> pd.DataFrame | None:
    """Run SQL on the workspace (canonical views + derived tables); None if a table is absent."""
    if not ws.db_path.exists() and needs:
        return None
    with ws.connect(read_only=True) as con:
        have = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        if any(t not in have for t in needs):
            return None
        return con.execute(sql).df()


def entity_labels(ws: Workspace, entity_type: str,
                  sources: Sequence[str] = ALL_SOURCES) -> pd.DataFrame:
    """Labels of one entity type: entity_id, is_fraud, scenarios (;-joined), amount.

    Inspection outcomes override other sources for the same entity (the inspector saw it).
    Decoys count as clean.
    """
    from fraudscan.outcomes import outcome_labels

    lab = ws.read_table("labels")
    out = outcome_labels(ws)
    lab = pd.concat([lab, out], ignore_index=True) if len(out) else lab
    lab = lab[(lab["entity_type"] == entity_type) & lab["source"].isin(list(sources))]
    if lab.empty:
        return pd.DataFrame(columns=["entity_id", "is_fraud", "scenarios", "amount"])
    lab = lab.assign(entity_id=lab["entity_id"].astype(str),
                     is_fraud=lab["is_fraud"].astype(bool),
                     insp=(lab["source"] == "inspection").astype(int),
                     amount_at_risk=pd.to_numeric(lab["amount_at_risk"], errors="coerce"))
    insp = lab[lab["insp"] == 1]
    lab = pd.concat([insp, lab[~lab["entity_id"].isin(set(insp["entity_id"]))]])
    g = lab.groupby("entity_id", sort=True)
    res = pd.DataFrame({
        "is_fraud": g["is_fraud"].max(),
        "scenarios": g.apply(lambda d: ";".join(sorted(
            {s for s, f in zip(d["scenario"], d["is_fraud"], strict=True) if f})),
            include_groups=False),
        "amount": g["amount_at_risk"].sum(min_count=1),
    }).reset_index()
    return res


def attach_labels(ids: np.ndarray, labels: pd.DataFrame, train_on: str = "auto"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(y, scenarios) aligned with ``ids`` under the unlabelled policy (see module doc)."""
    lab = labels.set_index("entity_id")
    s_ids = pd.Index(ids.astype(str))
    known = lab.reindex(s_ids)
    y = known["is_fraud"].map({True: 1.0, False: 0.0}).astype(float).to_numpy()
    n_pos = int(np.nansum(y == 1))
    n_neg = int(np.nansum(y == 0))
    mode = train_on
    if mode == "auto":
        mode = "labelled" if n_neg >= max(1, n_pos) / 2 else "all"
    if mode == "all":
        y = np.where(np.isnan(y), 0.0, y)
    elif mode != "labelled":
        raise ValueError("train_on must be auto, all or labelled")
    scen = known["scenarios"].fillna("").astype(str).to_numpy()
    return y, scen


def _f(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce") if col in df.columns else pd.Series(
        np.nan, index=df.index)


def as_of_day(until: object) -> str | None:
    """``until`` as a SQL date literal (None: no cut-off)."""
    return None if until is None else f"DATE '{pd.Timestamp(until).date().isoformat()}'"


def dated_leads_sql(until: object) -> str:
    """The ``leads`` rows known by the day ``until``: a lead is dated by the end of its period
    (``YYYY-MM``, ``YYYYQn``, ``YYYY``) and by its last listed settlement, whichever is later;
    a lead with neither counts as known at the end of the data."""
    day = as_of_day(until)
    if day is None:
        return "SELECT * FROM leads"
    return f"""
        WITH pe AS (
            SELECT *, CASE
                WHEN regexp_matches(period, '^[0-9]{{4}}-[0-9]{{2}}$')
                    THEN last_day(CAST(period || '-01' AS DATE))
                WHEN regexp_matches(period, '^[0-9]{{4}}-?Q[1-4]$')
                    THEN last_day(make_date(CAST(left(period, 4) AS INTEGER),
                                            CAST(right(period, 1) AS INTEGER) * 3, 1))
                WHEN regexp_matches(period, '^[0-9]{{4}}$')
                    THEN CAST(period || '-12-31' AS DATE)
                END AS _period_end
            FROM leads),
        ls AS (SELECT u.lead_id, CAST(max(s.settle_time) AS DATE) AS _last_settle
               FROM (SELECT lead_id, unnest(settlement_ids) AS sid FROM leads) u
               JOIN settlements s ON s.settlement_id = u.sid GROUP BY 1)
        SELECT pe.* EXCLUDE (_period_end) FROM pe LEFT JOIN ls USING (lead_id)
        WHERE coalesce(greatest(_period_end, _last_settle), _period_end, _last_settle,
                       (SELECT CAST(max(settle_time) AS DATE) FROM settlements)) <= {day}"""


def lead_counts(ws: Workspace, column: str, subject_type: str | None = None,
                until: object = None) -> pd.DataFrame:
    """Per entity (``column`` of the leads table): leads, detectors, max score, amount.

    With ``until`` only leads known by that day count (:func:`dated_leads_sql`).
    """
    where = f"WHERE subject_type = '{subject_type}'" if subject_type else ""
    df = query(ws, f"""
        SELECT {column} AS id, count(*) AS n_leads, count(DISTINCT detector) AS n_detectors,
               max(score) AS max_lead_score, sum(amount) AS lead_amount,
               string_agg(DISTINCT detector, ';' ORDER BY detector) AS detectors
        FROM ({dated_leads_sql(until)}) {where} GROUP BY 1""", needs=["leads"])
    return df if df is not None else pd.DataFrame(
        columns=["id", "n_leads", "n_detectors", "max_lead_score", "lead_amount", "detectors"])


def finding_counts(ws: Workspace, column: str, until: object = None) -> pd.DataFrame:
    """Per entity: rule findings, distinct rules, flagged amount.

    With ``until`` only findings on settlements settled by that day (else by service date).
    """
    day = as_of_day(until)
    src = "rule_findings" if day is None else f"""(
        SELECT f.* FROM rule_findings f LEFT JOIN settlements s USING (settlement_id)
        WHERE CAST(coalesce(s.settle_time, f.service_date) AS DATE) <= {day})"""
    df = query(ws, f"""
        SELECT {column} AS id, count(*) AS n_rule_findings, count(DISTINCT rule_id) AS n_rules,
               sum(amount) AS rule_amount
        FROM {src} WHERE {column} IS NOT NULL GROUP BY 1""", needs=["rule_findings"])
    return df if df is not None else pd.DataFrame(
        columns=["id", "n_rule_findings", "n_rules", "rule_amount"])


def ring_counts(ws: Workspace, node_types: Sequence[str], until: object = None
                ) -> pd.DataFrame:
    """Per entity: rings it belongs to and the best ring score.

    Rings carry no date; with ``until`` a ring counts once one of its insured members has
    settled at one of its facilities by that day (its evidence had begun).
    """
    types = ", ".join(f"'{t}'" for t in node_types)
    day = as_of_day(until)
    seen = "" if day is None else f"""AND m.ring_id IN (
        SELECT DISTINCT p.ring_id FROM ring_members p
        JOIN ring_members f ON f.ring_id = p.ring_id AND f.node_type IN ('facility', 'pharmacy')
        JOIN settlements s ON s.person_id = p.node_id AND s.facility_id = f.node_id
        WHERE p.node_type = 'person' AND CAST(s.settle_time AS DATE) <= {day})"""
    df = query(ws, f"""
        SELECT m.node_id AS id, count(DISTINCT m.ring_id) AS n_rings, max(r.score) AS ring_score,
               max(CASE WHEN m.role IN ('organiser', 'recruiter', 'hub') THEN 1 ELSE 0 END)
                   AS ring_key_role,
               arg_max(m.ring_id, r.score) AS ring_id
        FROM ring_members m JOIN rings r USING (ring_id)
        WHERE m.node_type IN ({types}) {seen} GROUP BY 1""", needs=["rings", "ring_members"])
    return df if df is not None else pd.DataFrame(
        columns=["id", "n_rings", "ring_score", "ring_key_role", "ring_id"])


def merge_counts(base: pd.DataFrame, key: str, *parts: pd.DataFrame) -> pd.DataFrame:
    """Left-join count tables on ``key`` (missing counts are 0, missing maxima NaN)."""
    out = base
    for p in parts:
        p = p.rename(columns={"id": key})
        p[key] = p[key].astype(str)
        out = out.merge(p, on=key, how="left")
    for c in ("n_leads", "n_detectors", "lead_amount", "n_rule_findings", "n_rules",
              "rule_amount", "n_rings", "ring_key_role"):
        if c in out.columns:
            out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0.0)
    return out


def numeric(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The listed columns as float64 (absent columns as NaN, booleans as 0/1)."""
    return pd.DataFrame({c: _f(df, c).astype("float64") for c in columns}, index=df.index)


def facility_info(ws: Workspace) -> pd.DataFrame:
    """Facility registry columns used for filters, peers and grading."""
    f = ws.read_table("facilities")
    f["facility_id"] = f["facility_id"].astype(str)
    f["level"] = pd.to_numeric(f["level"], errors="coerce").fillna(0).astype(int)
    for c in ("district", "facility_type", "facility_name", "agreement_status"):
        f[c] = f[c].astype(object).where(f[c].notna(), "")
    return f[["facility_id", "facility_name", "facility_type", "level", "district",
              "agreement_status"]]


def duck() -> duckdb.DuckDBPyConnection:
    """A scratch in-memory DuckDB connection (one thread: the host is shared)."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con
