"""Edge building for the collusion graph, set-wise in DuckDB SQL (BRIEF §2.2 M22).

Person pairs come from range self-joins: co-admission (same facility within ±``co_admission_days``)
and co-visit (same facility within ±``co_visit_minutes``). A busy hospital would make the pair
count explode, so each admission/visit carries the size of its window (a window function) and
windows above the cap are skipped; each co-event is weighted by its rarity ``1/log2(1 + n)``, so
meeting at a quiet village clinic says more than meeting at a tertiary hospital. Pairs must recur
(``min_events``; ``min_events_co_visit`` for co-visits, which are common among neighbours) or,
for co-admissions, share a village or employer (a recruited cohort is admitted together once
per wave); same-group pairs weigh ``1 + same_group_bonus`` times more, and every kept pair
reaches ``min_weight``. The persons that survive are the *core*; only they get
edges to doctors (shared staff: weighted by the share of the doctor's patients who are core, so
a busy hospital doctor barely links anyone), facilities, villages and employers, which keeps the
graph small.
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


def person_pairs(con: duckdb.DuckDBPyConnection, cfg: dict[str, Any],
                 prune: bool = True) -> None:
    """Create the temp tables ``_co`` (one row per co-event) and ``_pp`` (weighted person pairs).

    With ``prune`` the pairs must recur or share a group and reach ``min_weight`` (the graph's
    core); without it every co-event pair is kept (the *unpruned* co-event graph, used by
    benchmarks/bench_graph.py to compare community algorithms). Hub caps apply either way.
    """
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
    # co-events: one row per (pair, occasion) with both settlements, for ring money/synchrony.
    # The range condition is turned into equality joins on (facility, time bucket) with each
    # row replicated into its neighbouring buckets, so DuckDB hash-joins instead of comparing
    # every pair of a facility's visits.
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _co AS
    WITH a AS (SELECT *, unnest([b - 1, b, b + 1]) AS jb
               FROM (SELECT *, (CAST(epoch(d) AS BIGINT) // 86400) // {max(wd, 1)} AS b FROM _adm
                     WHERE n_win <= {cap})),
    bb AS (SELECT *, (CAST(epoch(d) AS BIGINT) // 86400) // {max(wd, 1)} AS b FROM _adm
           WHERE n_win <= {cap}),
    va AS (SELECT *, unnest([b - 1, b, b + 1]) AS jb
           FROM (SELECT *, CAST(epoch(t) AS BIGINT) // {60 * max(wm, 1)} AS b FROM _vis
                 WHERE n_win <= {vcap})),
    vb AS (SELECT *, CAST(epoch(t) AS BIGINT) // {60 * max(wm, 1)} AS b FROM _vis
           WHERE n_win <= {vcap})
    SELECT 'co_admission' AS kind, a.person_id AS p1, bb.person_id AS p2, a.facility_id,
           a.settlement_id AS s1, bb.settlement_id AS s2, least(a.d, bb.d) AS d,
           1.0 / log2(1 + greatest(a.n_win, bb.n_win)) AS w
    FROM a JOIN bb ON a.facility_id = bb.facility_id AND bb.b = a.jb
    WHERE a.person_id < bb.person_id AND abs(date_diff('day', a.d, bb.d)) <= {wd}
    UNION ALL
    SELECT 'co_visit', va.person_id, vb.person_id, va.facility_id, va.settlement_id,
           vb.settlement_id, least(va.t, vb.t)::DATE, 1.0 / log2(1 + greatest(va.n_win, vb.n_win))
    FROM va JOIN vb ON va.facility_id = vb.facility_id AND vb.b = va.jb
    WHERE va.person_id < vb.person_id
      AND abs(epoch(va.t) - epoch(vb.t)) <= {60 * wm}""")
    single = "true" if p["single_event_same_group"] else "false"
    keep = (f"""(kind = 'co_admission' AND events >= {int(p['min_events'])})
       OR (kind = 'co_visit' AND events >= {int(p['min_events_co_visit'])})
       OR (kind = 'co_admission' AND {single} AND same_group)""" if prune else "true")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _pp AS
    WITH agg AS (
        SELECT kind, p1, p2, sum(w) AS weight, count(*) AS events
        FROM (SELECT kind, p1, p2, facility_id, d, max(w) AS w FROM _co GROUP BY ALL)
        GROUP BY ALL),
    g AS (
        SELECT agg.*, coalesce(a.village = b.village, false)
                      OR coalesce(a.employer = b.employer, false) AS same_group
        FROM agg JOIN persons a ON a.person_id = agg.p1 JOIN persons b ON b.person_id = agg.p2)
    SELECT kind, p1, p2, events, same_group,
           weight * CASE WHEN same_group THEN 1 + {float(p['same_group_bonus'])} ELSE 1 END
               AS weight
    FROM g
    WHERE {keep}""")
    if prune:
        con.execute(f"DELETE FROM _pp WHERE weight < {float(p['min_weight'])}")


def build_edges(con: duckdb.DuckDBPyConnection, cfg: dict[str, Any],
                has_trace: bool = False) -> dict[str, int]:
    """Create ``graph_edges`` in the connection's database; returns edge counts by kind."""
    p = cfg["pairs"]
    person_pairs(con, cfg)
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
           {float(p['staff_weight'])} * count(*) * any_value(n.core_patients)
               / any_value(a.patients), count(*)
    FROM core_s c JOIN staff_all a ON a.staff_id = c.attending_staff_id
    JOIN staff_n n ON n.staff_id = c.attending_staff_id
    GROUP BY ALL HAVING count(*) >= {int(p['min_staff_visits'])}
    UNION ALL
    SELECT 'staff', x.staff_id, {ft}, x.facility_id, 'practises_at',
           {float(p['practise_weight'])} * log2(1 + count(*)), count(*)
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
