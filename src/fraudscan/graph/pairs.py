"""Edge building for the collusion graph, set-wise in DuckDB SQL (BRIEF §2.2 M22).

Person pairs come from range self-joins: co-admission (same facility within ±``co_admission_days``)
and co-visit (same facility within ±``co_visit_minutes``). A busy hospital would make the pair
count explode, so each admission/visit carries the size of its window (a window function) and
windows above the cap are skipped; each co-event is weighted by its rarity ``1/log2(1 + n)``, so
meeting at a quiet village clinic says more than meeting at a tertiary hospital. Pairs must recur
(``min_events``) and reach ``min_weight``. The persons that survive are the *core*; only they get
edges to doctors (shared staff), facilities, villages and employers, which keeps the graph small.
Trace-code resale chains (box sold at A, sold again at B) add buyer→pharmacy and A→B edges.

Everything lands in the DuckDB table ``graph_edges`` (u_type, u_id, v_type, v_id, kind, weight,
events) with ``u`` < ``v`` for symmetric kinds.
"""

from __future__ import annotations

from typing import Any

import duckdb

from fraudscan.leads.registry import sql_list
from fraudscan.schema import INPATIENT_MEDICAL_TYPES, PHARMACY_TYPES

EDGE_KINDS = ("co_admission", "co_visit", "treated_by", "practises_at", "visits", "lives_in",
              "works_at", "resale_chain")


def _ftype() -> str:
    """SQL for the node type of a facility: pharmacies are their own node type."""
    return (f"CASE WHEN f.facility_type IN {sql_list(PHARMACY_TYPES)} THEN 'pharmacy' "
            "ELSE 'facility' END")


def build_edges(con: duckdb.DuckDBPyConnection, cfg: dict[str, Any],
                has_trace: bool = False) -> dict[str, int]:
    """Create ``graph_edges`` in the connection's database; returns edge counts by kind."""
    p = cfg["pairs"]
    inpatient = sql_list(INPATIENT_MEDICAL_TYPES)
    wd, cap = int(p["co_admission_days"]), int(p["co_admission_cap"])
    wm, vcap = int(p["co_visit_minutes"]), int(p["co_visit_cap"])
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _adm AS
    SELECT settlement_id, person_id, facility_id, d,
           count(*) OVER (PARTITION BY facility_id ORDER BY d RANGE BETWEEN
               INTERVAL {wd} DAYS PRECEDING AND INTERVAL {wd} DAYS FOLLOWING) AS n_win
    FROM (SELECT settlement_id, person_id, facility_id, admission_time::DATE AS d
          FROM settlements WHERE medical_type IN {inpatient})""")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _vis AS
    SELECT settlement_id, person_id, facility_id, t,
           count(*) OVER (PARTITION BY facility_id ORDER BY t RANGE BETWEEN
               INTERVAL {wm} MINUTES PRECEDING AND INTERVAL {wm} MINUTES FOLLOWING) AS n_win
    FROM (SELECT settlement_id, person_id, facility_id, admission_time AS t
          FROM settlements WHERE medical_type NOT IN {inpatient})""")
    # co-events: one row per (pair, occasion) with both settlements, for ring money/synchrony
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _co AS
    SELECT 'co_admission' AS kind, a.person_id AS p1, b.person_id AS p2, a.facility_id,
           a.settlement_id AS s1, b.settlement_id AS s2, least(a.d, b.d) AS d,
           1.0 / log2(1 + greatest(a.n_win, b.n_win)) AS w
    FROM _adm a JOIN _adm b ON a.facility_id = b.facility_id AND a.person_id < b.person_id
     AND b.d BETWEEN a.d - {wd} AND a.d + {wd}
    WHERE a.n_win <= {cap} AND b.n_win <= {cap}
    UNION ALL
    SELECT 'co_visit', a.person_id, b.person_id, a.facility_id, a.settlement_id, b.settlement_id,
           least(a.t, b.t)::DATE, 1.0 / log2(1 + greatest(a.n_win, b.n_win))
    FROM _vis a JOIN _vis b ON a.facility_id = b.facility_id AND a.person_id < b.person_id
     AND b.t BETWEEN a.t - INTERVAL {wm} MINUTES AND a.t + INTERVAL {wm} MINUTES
    WHERE a.n_win <= {vcap} AND b.n_win <= {vcap}""")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _pp AS
    SELECT kind, p1, p2, sum(w) AS weight, count(DISTINCT (facility_id, d)) AS events
    FROM (SELECT kind, p1, p2, facility_id, d, max(w) AS w FROM _co GROUP BY ALL)
    GROUP BY ALL
    HAVING count(DISTINCT (facility_id, d)) >= {int(p['min_events'])}
       AND sum(w) >= {float(p['min_weight'])}""")
    con.execute("""
    CREATE OR REPLACE TEMP TABLE _core AS
    SELECT p1 AS person_id FROM _pp UNION SELECT p2 FROM _pp""")
    # co-event settlements of kept pairs: the synchronised activity of the core
    con.execute("""
    CREATE OR REPLACE TABLE graph_co_settlements AS
    SELECT DISTINCT s AS settlement_id FROM (
        SELECT c.s1 AS s FROM _co c SEMI JOIN _pp USING (kind, p1, p2)
        UNION ALL SELECT c.s2 FROM _co c SEMI JOIN _pp USING (kind, p1, p2))""")
    ft = _ftype()
    trace = ""
    if has_trace:
        trace = f"""
        UNION ALL
        SELECT 'person', prev_person, ftype_b, fac_b, 'resale_chain',
               {float(p['resale_weight'])} * count(DISTINCT trace_code), count(DISTINCT trace_code)
        FROM _chain WHERE prev_person IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT ftype_a, fac_a, ftype_b, fac_b, 'resale_chain',
               {float(p['resale_weight'])} * count(DISTINCT trace_code), count(DISTINCT trace_code)
        FROM _chain WHERE fac_a <> fac_b GROUP BY ALL"""
        con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _chain AS
        WITH sc AS (
            SELECT t.trace_code, t.scan_time, t.scan_id, t.facility_id, l.settlement_id,
                   s.person_id, {ft} AS ftype
            FROM trace_scans t JOIN fee_lines l USING (line_id)
            JOIN settlements s USING (settlement_id)
            JOIN facilities f ON f.facility_id = t.facility_id
            WHERE l.qty > 0),
        q AS (SELECT *, lag(person_id) OVER w AS prev_person, lag(facility_id) OVER w AS fac_a,
                     lag(ftype) OVER w AS ftype_a, lag(settlement_id) OVER w AS prev_sid
              FROM sc WINDOW w AS (PARTITION BY trace_code ORDER BY scan_time, scan_id))
        SELECT trace_code, prev_person, fac_a, ftype_a, facility_id AS fac_b, ftype AS ftype_b
        FROM q WHERE prev_sid IS NOT NULL AND prev_sid <> settlement_id""")
    con.execute(f"""
    CREATE OR REPLACE TABLE graph_edges AS
    WITH core_s AS (
        SELECT s.* FROM settlements s SEMI JOIN _core USING (person_id)),
    staff_n AS (
        SELECT attending_staff_id AS staff_id, count(DISTINCT person_id) AS core_patients
        FROM core_s WHERE attending_staff_id IS NOT NULL GROUP BY 1
        HAVING count(DISTINCT person_id) >= {int(p['min_staff_core_patients'])}),
    staff_all AS (
        SELECT attending_staff_id AS staff_id, count(DISTINCT person_id) AS patients
        FROM settlements WHERE attending_staff_id IN (SELECT staff_id FROM staff_n) GROUP BY 1),
    groups AS (
        SELECT 'village' AS gtype, village AS gkey, person_id FROM persons
        WHERE village IS NOT NULL AND person_id IN (SELECT person_id FROM _core)
        UNION ALL
        SELECT 'employer', employer, person_id FROM persons
        WHERE employer IS NOT NULL AND person_id IN (SELECT person_id FROM _core)),
    groups_k AS (SELECT gtype, gkey FROM groups GROUP BY ALL
                 HAVING count(*) >= {int(p['min_group_core_persons'])}),
    co_fac AS (
        SELECT s.person_id, s.facility_id, count(*) AS n
        FROM settlements s SEMI JOIN graph_co_settlements USING (settlement_id) GROUP BY ALL)
    SELECT 'person' AS u_type, p1 AS u_id, 'person' AS v_type, p2 AS v_id, kind,
           weight, events FROM _pp
    UNION ALL
    SELECT 'person', c.person_id, 'staff', c.attending_staff_id, 'treated_by',
           {float(p['staff_weight'])} * count(*) / log2(1 + any_value(a.patients)), count(*)
    FROM core_s c JOIN staff_all a ON a.staff_id = c.attending_staff_id GROUP BY ALL
    UNION ALL
    SELECT 'staff', x.staff_id, {ft}, x.facility_id, 'practises_at', log2(1 + count(*)), count(*)
    FROM (SELECT attending_staff_id AS staff_id, facility_id FROM settlements
          WHERE attending_staff_id IN (SELECT staff_id FROM staff_n)) x
    JOIN facilities f USING (facility_id) GROUP BY ALL
    UNION ALL
    SELECT 'person', c.person_id, {ft}, c.facility_id, 'visits',
           {float(p['facility_weight'])} * c.n, c.n
    FROM co_fac c JOIN facilities f USING (facility_id)
    UNION ALL
    SELECT 'person', g.person_id, g.gtype, g.gkey,
           CASE WHEN g.gtype = 'village' THEN 'lives_in' ELSE 'works_at' END,
           {float(p['group_weight'])}, 1
    FROM groups g SEMI JOIN groups_k USING (gtype, gkey)
    {trace}""")
    counts = dict(con.execute(
        "SELECT kind, count(*) FROM graph_edges GROUP BY 1").fetchall())
    return {k: int(counts.get(k, 0)) for k in EDGE_KINDS}
