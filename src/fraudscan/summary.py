"""Workspace summaries: row counts, date range, districts and fraud labels by scenario."""

from __future__ import annotations

import os
from typing import Any

from fraudscan.workspace import Workspace


def workspace_summary(path: str | os.PathLike[str] | Workspace) -> dict[str, Any]:
    """Summarise a workspace as a plain dict (what ``fraudscan info`` prints)."""
    ws = path if isinstance(path, Workspace) else Workspace(path)
    ws.require()
    meta = ws.metadata()
    out: dict[str, Any] = {
        "path": str(ws.path),
        "source": meta.get("source"),
        "row_counts": ws.row_counts(),
    }
    with ws.connect() as con:
        lo, hi = con.execute(
            "SELECT CAST(min(admission_time) AS DATE), CAST(max(discharge_time) AS DATE) "
            "FROM settlements"
        ).fetchone()
        out["date_range"] = [str(lo), str(hi)] if lo is not None else None
        rows = con.execute(
            """
            WITH f AS (SELECT coalesce(district, '-') AS district, count(*) AS n
                       FROM facilities GROUP BY 1),
                 s AS (SELECT coalesce(f.district, '-') AS district, count(*) AS n,
                              sum(s.fund_paid) AS fund
                       FROM settlements s JOIN facilities f USING (facility_id) GROUP BY 1)
            SELECT f.district, f.n, coalesce(s.n, 0), coalesce(s.fund, 0)
            FROM f LEFT JOIN s USING (district) ORDER BY f.district
            """
        ).fetchall()
        out["districts"] = [
            {"district": d, "facilities": int(nf), "settlements": int(ns), "fund_paid": float(fu)}
            for d, nf, ns, fu in rows
        ]
        rows = con.execute(
            """
            SELECT scenario, entity_type,
                   count(*) FILTER (WHERE is_fraud) AS fraud,
                   count(*) FILTER (WHERE NOT is_fraud) AS clean,
                   coalesce(sum(amount_at_risk) FILTER (WHERE is_fraud), 0) AS amount
            FROM labels GROUP BY ALL ORDER BY scenario, entity_type
            """
        ).fetchall()
        out["labels"] = [
            {"scenario": sc, "entity_type": et, "fraud": int(f), "clean": int(c),
             "amount_at_risk": float(a)}
            for sc, et, f, c, a in rows
        ]
    return out
