"""Rings: communities turned into scored collusion rings with member roles (BRIEF §2.4).

Communities of persons come from the evidence edges; :func:`attach` then adds the doctors,
institutions, villages and employers a community concentrates on (share and lift over the
neighbourhood). Ring-level features are computed in DuckDB over the members' settlements: size
and members by type, edge density, synchrony of visits (share of members' settlements that
another member matched at the same facility within the co-admission window), share of persons
with rule findings (``rule_findings`` when another step wrote it) or with leads, the money on
those synchronised settlements and institution overlap (Jaccard of the person sets of the
ring's two busiest facilities, the Xihu feature). Member roles come from type and centrality:
the strongest person is the organiser, persons bridging the ring (high betweenness) are
recruiters, the rest patients; doctors, pharmacies, facilities (a hub when most members used
it) and villages/employers (group) keep their type.
"""

from __future__ import annotations

from typing import Any

import duckdb
import igraph as ig
import numpy as np
import pandas as pd

from fraudscan.graph.communities import WeightedGraph
from fraudscan.leads.registry import sql_list
from fraudscan.schema import PHARMACY_TYPES

RING_COLUMNS = ("ring_id", "size", "persons", "staff", "facilities", "pharmacies", "groups",
                "edges", "density", "synchrony", "rule_hit_share", "lead_share",
                "flagged_share", "amount", "institution_overlap", "top_facility",
                "top_facility_share", "score")
MEMBER_COLUMNS = ("ring_id", "node_type", "node_id", "role", "degree", "strength",
                  "betweenness")


def _roles(sub: ig.Graph, types: list[str], n_persons: int, max_btw: int,
           n_organisers: int) -> tuple[list[str], list[float]]:
    strength = sub.strength(weights="weight")
    btw = (sub.betweenness(weights=[1.0 / w for w in sub.es["weight"]])
           if sub.vcount() <= max_btw else [0.0] * sub.vcount())
    persons = [i for i, t in enumerate(types) if t == "person"]
    organisers = set(sorted(persons, key=lambda i: -strength[i])[:n_organisers])
    pb = sorted((btw[i] for i in persons), reverse=True)
    cut = pb[max(0, len(pb) // 4 - 1)] if pb else 0.0
    degree = sub.degree()
    roles = []
    for i, t in enumerate(types):
        if t == "person":
            role = ("organiser" if i in organisers
                    else "recruiter" if btw[i] > 0 and btw[i] >= cut else "patient")
        elif t == "staff":
            role = "doctor"
        elif t == "pharmacy":
            role = "pharmacy"
        elif t == "facility":
            role = "hub" if degree[i] >= max(2, n_persons / 2) else "facility"
        else:
            role = "group"
        roles.append(role)
    return roles, btw


def assemble(wg: WeightedGraph, membership: list[int], cfg: dict[str, Any]
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Members and per-ring graph statistics for communities with >= ``min_persons`` persons."""
    rc = cfg["rings"]
    if not membership:
        return (pd.DataFrame(columns=list(RING_COLUMNS)),
                pd.DataFrame(columns=list(MEMBER_COLUMNS)))
    nodes = wg.nodes.assign(comm=membership)
    counts = nodes[nodes.node_type == "person"].groupby("comm").size()
    keep = counts[counts >= int(rc["min_persons"])].index
    members, stats = [], []
    for comm in keep:
        idx = np.flatnonzero(nodes["comm"].to_numpy() == comm).tolist()
        sub = wg.graph.subgraph(idx)
        types = nodes["node_type"].iloc[idx].tolist()
        n_p = types.count("person")
        roles, btw = _roles(sub, types, n_p, int(rc["max_betweenness_nodes"]),
                            int(rc["organiser_top"]))
        strength = sub.strength(weights="weight")
        n = sub.vcount()
        stats.append({"comm": comm, "size": n, "persons": n_p, "staff": types.count("staff"),
                      "facilities": types.count("facility"),
                      "pharmacies": types.count("pharmacy"),
                      "groups": types.count("village") + types.count("employer"),
                      "edges": sub.ecount(),
                      "density": 2 * sub.ecount() / (n * (n - 1)) if n > 1 else 0.0})
        for j, i in enumerate(idx):
            members.append({"comm": comm, "node_type": types[j],
                            "node_id": nodes["node_id"].iat[i], "role": roles[j],
                            "degree": sub.degree(j), "strength": round(strength[j], 4),
                            "betweenness": round(btw[j], 4)})
    return pd.DataFrame(stats), pd.DataFrame(members)


def attach(con: duckdb.DuckDBPyConnection, members: pd.DataFrame, cfg: dict[str, Any]
           ) -> pd.DataFrame:
    """Add the doctors, facilities, pharmacies, villages and employers a ring concentrates on.

    Communities come from evidence of persons acting together; the institutions behind them are
    joined afterwards when >= ``attach_min_share`` of the ring's persons used them (or live or
    work there), >= ``attach_min_lift`` times the rate of the population and of the ring's
    villages (a village doctor everyone in the village sees is not a ring doctor) and at least
    ``attach_min_persons`` persons. Degree is that person count, strength the share.
    """
    rc = cfg["rings"]
    if members.empty:
        return members
    persons = members[members["node_type"] == "person"][["comm", "node_id"]]
    con.register("_rp", persons.rename(columns={"node_id": "person_id"}))
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _links AS
        SELECT DISTINCT s.person_id, 'staff' AS node_type, s.attending_staff_id AS node_id
        FROM settlements s JOIN staff st ON st.staff_id = s.attending_staff_id
        WHERE st.role IN {sql_list(rc['attach_staff_roles'])}
        UNION ALL
        SELECT DISTINCT s.person_id,
               CASE WHEN f.facility_type IN {sql_list(PHARMACY_TYPES)} THEN 'pharmacy'
                    ELSE 'facility' END, s.facility_id
        FROM settlements s JOIN facilities f USING (facility_id)
        UNION ALL
        SELECT person_id, 'village', village FROM persons WHERE village IS NOT NULL
        UNION ALL
        SELECT person_id, 'employer', employer FROM persons WHERE employer IS NOT NULL""")
    extra = con.execute(f"""
    WITH rp AS (SELECT * FROM _rp),
    n_ring AS (SELECT comm, count(*) AS n FROM rp GROUP BY 1),
    n_all AS (SELECT count(*) AS n FROM persons),
    hit AS (SELECT rp.comm, l.node_type, l.node_id, count(*) AS k
            FROM rp JOIN _links l USING (person_id) JOIN n_ring r USING (comm)
            GROUP BY ALL
            HAVING count(*) >= {int(rc['attach_min_persons'])}
               AND count(*) >= {float(rc['attach_min_share'])} * any_value(r.n)),
    pop AS (SELECT node_type, node_id, count(*) AS k_all FROM _links
            WHERE (node_type, node_id) IN (SELECT (node_type, node_id) FROM hit)
            GROUP BY ALL),
    ring_villages AS (SELECT DISTINCT rp.comm, p.village
                      FROM rp JOIN persons p USING (person_id) WHERE p.village IS NOT NULL),
    village_n AS (SELECT village, count(*) AS n FROM persons GROUP BY 1),
    n_hood AS (SELECT rv.comm, sum(v.n) AS n FROM ring_villages rv JOIN village_n v USING (village)
               GROUP BY 1),
    village_use AS (
        SELECT p.village, l.node_type, l.node_id, count(*) AS k
        FROM _links l JOIN persons p USING (person_id)
        WHERE l.node_type NOT IN ('village', 'employer')
          AND (l.node_type, l.node_id) IN (SELECT (node_type, node_id) FROM hit)
        GROUP BY ALL),
    pop_hood AS (SELECT rv.comm, u.node_type, u.node_id, sum(u.k) AS k_hood
                 FROM ring_villages rv JOIN village_use u USING (village)
                 SEMI JOIN hit USING (comm, node_type, node_id)
                 GROUP BY ALL),
    lifted AS (
        SELECT h.comm, h.node_type, h.node_id, h.k, h.k / r.n AS share,
               (h.k / r.n) / greatest(p.k_all / a.n,
                                      coalesce(ph.k_hood / nh.n, 0)) AS lift
        FROM hit h JOIN n_ring r USING (comm) JOIN pop p USING (node_type, node_id)
        CROSS JOIN n_all a
        LEFT JOIN pop_hood ph USING (comm, node_type, node_id)
        LEFT JOIN n_hood nh USING (comm))
    SELECT * FROM lifted
    WHERE share >= {float(rc['attach_min_share'])} AND lift >= {float(rc['attach_min_lift'])}
    """).df()
    con.unregister("_rp")
    have = set(zip(members["comm"], members["node_type"], members["node_id"], strict=True))
    extra = extra[[(c, t, i) not in have for c, t, i in
                   zip(extra["comm"], extra["node_type"], extra["node_id"], strict=True)]]
    roles = {"staff": "doctor", "pharmacy": "pharmacy", "facility": "hub"}
    add = pd.DataFrame({
        "comm": extra["comm"], "node_type": extra["node_type"], "node_id": extra["node_id"],
        "role": extra["node_type"].map(roles).fillna("group"),
        "degree": extra["k"].astype(int), "strength": extra["share"].round(4),
        "betweenness": 0.0})
    return pd.concat([members, add], ignore_index=True) if len(add) else members


def score_rings(con: duckdb.DuckDBPyConnection, stats: pd.DataFrame, members: pd.DataFrame,
                cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the SQL ring features, number rings by score and write ``rings``/``ring_members``."""
    wd = int(cfg["pairs"]["co_admission_days"])
    if stats.empty:
        rings = pd.DataFrame(columns=list(RING_COLUMNS))
        mem = pd.DataFrame(columns=list(MEMBER_COLUMNS))
        _store(con, rings, mem)
        return rings, mem
    con.register("_ring_members", members)
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()}
    rule_sql = ("SELECT DISTINCT person_id FROM rule_findings WHERE person_id IS NOT NULL"
                if "rule_findings" in tables else "SELECT NULL::VARCHAR AS person_id WHERE false")
    lead_sql = ("""SELECT subject_id AS person_id FROM leads WHERE subject_type = 'person'
                   UNION SELECT s.person_id FROM (SELECT unnest(settlement_ids) AS settlement_id
                   FROM leads) l JOIN settlements s USING (settlement_id)"""
                if "leads" in tables else "SELECT NULL::VARCHAR AS person_id WHERE false")
    feat = con.execute(f"""
    WITH rp AS (SELECT comm, node_id AS person_id FROM _ring_members WHERE node_type = 'person'),
    rs AS (SELECT rp.comm, s.settlement_id, s.person_id, s.facility_id, s.fund_paid,
                  s.admission_time::DATE AS d
           FROM rp JOIN settlements s USING (person_id)),
    syn AS (SELECT DISTINCT a.settlement_id FROM rs a JOIN rs b ON a.comm = b.comm
            AND a.facility_id = b.facility_id AND a.person_id <> b.person_id
            AND b.d BETWEEN a.d - {wd} AND a.d + {wd}),
    money AS (SELECT rs.comm, count(*) AS n_settlements,
                     count(syn.settlement_id) AS n_sync,
                     coalesce(sum(rs.fund_paid) FILTER (WHERE syn.settlement_id IS NOT NULL), 0)
                         AS amount
              FROM rs LEFT JOIN syn USING (settlement_id) GROUP BY 1),
    rule_p AS ({rule_sql}), lead_p AS ({lead_sql}),
    flags AS (SELECT rp.comm,
                     avg(CASE WHEN r.person_id IS NOT NULL THEN 1.0 ELSE 0 END) AS rule_hit_share,
                     avg(CASE WHEN l.person_id IS NOT NULL THEN 1.0 ELSE 0 END) AS lead_share,
                     avg(CASE WHEN r.person_id IS NOT NULL OR l.person_id IS NOT NULL
                         THEN 1.0 ELSE 0 END) AS flagged_share
              FROM rp LEFT JOIN (SELECT DISTINCT person_id FROM rule_p) r USING (person_id)
              LEFT JOIN (SELECT DISTINCT person_id FROM lead_p) l USING (person_id)
              GROUP BY 1),
    fp AS (SELECT comm, facility_id, count(DISTINCT person_id) AS np,
                  row_number() OVER (PARTITION BY comm ORDER BY count(DISTINCT person_id) DESC,
                                     facility_id) AS r
           FROM rs GROUP BY comm, facility_id),
    top2 AS (SELECT comm, max(facility_id) FILTER (WHERE r = 1) AS f1,
                    max(facility_id) FILTER (WHERE r = 2) AS f2,
                    max(np) FILTER (WHERE r = 1) AS n1 FROM fp WHERE r <= 2 GROUP BY 1),
    ov AS (SELECT t.comm,
                  count(DISTINCT rs.person_id) FILTER (WHERE rs.facility_id = t.f1) AS a,
                  count(DISTINCT rs.person_id) FILTER (WHERE rs.facility_id = t.f2) AS b,
                  count(DISTINCT rs.person_id) FILTER (WHERE rs.facility_id IN (t.f1, t.f2))
                      AS u
           FROM top2 t JOIN rs USING (comm) GROUP BY 1)
    SELECT m.comm, m.n_sync / m.n_settlements AS synchrony, m.amount, f.rule_hit_share,
           f.lead_share, f.flagged_share, t.f1 AS top_facility,
           CASE WHEN t.f2 IS NULL THEN 0.0 ELSE (o.a + o.b - o.u) / o.u END
               AS institution_overlap,
           t.n1 AS top_n
    FROM money m JOIN flags f USING (comm) JOIN top2 t USING (comm) JOIN ov o USING (comm)
    """).df()
    con.unregister("_ring_members")
    counts = (members.assign(t=members["node_type"].replace({"village": "groups",
                                                              "employer": "groups"}))
              .groupby(["comm", "t"]).size().unstack(fill_value=0))
    stats = stats.drop(columns=["size", "persons", "staff", "facilities", "pharmacies", "groups"])
    stats = stats.merge(pd.DataFrame({
        "comm": counts.index,
        "size": counts.sum(axis=1).to_numpy(),
        "persons": counts.get("person", 0),
        "staff": counts.get("staff", 0),
        "facilities": counts.get("facility", 0),
        "pharmacies": counts.get("pharmacy", 0),
        "groups": counts.get("groups", 0)}).reset_index(drop=True), on="comm")
    rings = stats.merge(feat, on="comm", how="left")
    for c in ("synchrony", "amount", "rule_hit_share", "lead_share", "flagged_share",
              "institution_overlap"):
        rings[c] = rings[c].astype(float).fillna(0.0)
    rings["top_facility_share"] = (rings["top_n"].fillna(0) / rings["persons"]).clip(0, 1)
    rings["score"] = (0.4 * rings["synchrony"] + 0.3 * rings["flagged_share"]
                      + 0.3 * rings["top_facility_share"]).round(4)
    rings = rings.sort_values(["score", "amount", "comm"], ascending=[False, False, True],
                              ignore_index=True)
    rings["ring_id"] = [f"R{i + 1:05d}" for i in range(len(rings))]
    ids = dict(zip(rings["comm"], rings["ring_id"], strict=True))
    mem = members.assign(ring_id=members["comm"].map(ids))[list(MEMBER_COLUMNS)]
    rings = rings[list(RING_COLUMNS)]
    for c in ("density", "synchrony", "rule_hit_share", "lead_share", "flagged_share",
              "institution_overlap", "top_facility_share"):
        rings[c] = rings[c].astype(float).round(4)
    rings["amount"] = rings["amount"].round(2)
    _store(con, rings, mem)
    return rings, mem.sort_values(["ring_id", "strength"], ascending=[True, False],
                                  ignore_index=True)


def _store(con: duckdb.DuckDBPyConnection, rings: pd.DataFrame, mem: pd.DataFrame) -> None:
    con.register("_rings_df", rings)
    con.register("_members_df", mem)
    con.execute("CREATE OR REPLACE TABLE rings AS SELECT * FROM _rings_df")
    con.execute("CREATE OR REPLACE TABLE ring_members AS SELECT * FROM _members_df")
    con.unregister("_rings_df")
    con.unregister("_members_df")
