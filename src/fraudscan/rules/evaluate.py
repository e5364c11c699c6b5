"""Evaluate screening against a workspace's labels: per-rule recall and block precision.

Recall: every label whose scenario is a rule id (``R01`` ...) must be matched by a finding of
that rule on the labelled fee line (entity ``fee_line``) or settlement (entity ``settlement``).
Block precision: a block finding on a *clean* settlement is a false block. A settlement is clean
when neither it, nor one of its fee lines, nor its person carries a fraud label of any scenario,
and no fraud-labelled stay of the same person overlaps it in time (the "evidence" claims a
scenario leaves beside a fraudulent stay are part of that case, not clean claims).
"""

from __future__ import annotations

import os

import duckdb
import pandas as pd

from fraudscan.rules.model import RuleSet, load_rules
from fraudscan.workspace import Workspace

_SQL = """
WITH lab AS (SELECT * FROM labels WHERE is_fraud),
bad AS (
    SELECT entity_id AS sid FROM lab WHERE entity_type = 'settlement'
    UNION SELECT f.settlement_id FROM lab JOIN fee_lines f
        ON lab.entity_type = 'fee_line' AND f.line_id = lab.entity_id
    UNION SELECT s.settlement_id FROM lab JOIN settlements s
        ON lab.entity_type = 'person' AND s.person_id = lab.entity_id
),
near AS (
    SELECT o.settlement_id AS sid FROM settlements o JOIN settlements t
      ON t.person_id = o.person_id AND t.settlement_id IN (SELECT sid FROM bad)
     AND t.medical_type IN ('21', '52') AND o.admission_time < t.discharge_time
     AND o.discharge_time > t.admission_time
)
SELECT f.rule_id, count(*) FILTER (WHERE f.action = 'block') AS clean_blocks,
       count(DISTINCT f.settlement_id) FILTER (WHERE f.action = 'block') AS clean_settlements,
       count(*) AS clean_findings
FROM rule_findings f
WHERE f.settlement_id NOT IN (SELECT sid FROM bad)
  AND f.settlement_id NOT IN (SELECT sid FROM near)
GROUP BY 1
"""

_RECALL = """
SELECT l.scenario AS rule_id, l.entity_type, count(*) AS injected,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM rule_findings f WHERE f.rule_id = l.scenario AND (
               (l.entity_type = 'fee_line' AND f.line_id = l.entity_id) OR
               (l.entity_type = 'settlement' AND f.settlement_id = l.entity_id)))) AS found
FROM labels l WHERE l.is_fraud AND regexp_matches(l.scenario, '^R[0-9]+$')
GROUP BY 1, 2
"""


def evaluate(workspace: str | os.PathLike[str] | Workspace,
             rules: RuleSet | None = None) -> pd.DataFrame:
    """Per rule: injected labels, found, recall, findings and blocks, findings and blocks on
    clean claims.

    Reads ``rule_findings`` from the workspace's DuckDB (run :func:`screen` first).
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    with ws.connect() as con:
        return evaluate_connection(con, rules)


def evaluate_connection(con: duckdb.DuckDBPyConnection, rules: RuleSet | None = None
                        ) -> pd.DataFrame:
    """:func:`evaluate` on an open connection that has the canonical views and findings."""
    rules = rules or load_rules()
    rec = con.execute(_RECALL).df()
    clean = con.execute(_SQL).df()
    tot = con.execute("SELECT rule_id, count(*) AS findings, "
                      "count(*) FILTER (WHERE action = 'block') AS blocks "
                      "FROM rule_findings GROUP BY 1").df()
    rec = rec.groupby("rule_id", as_index=False)[["injected", "found"]].sum()
    base = pd.DataFrame([{"rule_id": r.id, "name": r.name, "action": r.action}
                         for r in rules.latest()])
    out = base.merge(rec, on="rule_id", how="left").merge(tot, on="rule_id", how="left") \
        .merge(clean, on="rule_id", how="left")
    for c in ("injected", "found", "findings", "blocks", "clean_blocks", "clean_settlements",
              "clean_findings"):
        out[c] = out[c].fillna(0).astype(int)
    out["recall"] = (out["found"] / out["injected"]).where(out["injected"] > 0)
    return out
