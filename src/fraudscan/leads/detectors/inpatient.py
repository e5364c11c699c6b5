"""Inpatient screening models: M01-M07 and M21 of BRIEF §2.2."""

from __future__ import annotations

import igraph as ig
import pandas as pd

from fraudscan.leads.detectors._sql import ids, mix_cte, stays_cte
from fraudscan.leads.registry import Context, SkipDetector, detector, prefix_match, sql_list


@detector("phantom_bed", title="挂床住院 phantom bed occupancy", model="M02",
          subjects=("settlement",), requires=("fee_lines",))
def phantom_bed(ctx: Context) -> pd.DataFrame:
    """Stays with a run of days billing only bed/nursing, or the patient settling elsewhere.

    For every day of a stay the fee lines are classed; a day billing only ``idle_classes`` is
    idle. Fires on the longest run of consecutive idle days >= ``min_idle_run`` with idle days
    >= ``min_idle_share`` of the stay; settlements of the same person at another facility
    strictly inside the stay (national rule R33) raise the score, and fire on their own with
    ``concurrent_alone``. Amount: fees billed on idle days.
    """
    c = ctx.cfg
    idle = sql_list(c["idle_classes"])
    empty_idle = "true" if c["empty_day_is_idle"] else "false"
    run_ok = (f"(max_run >= {int(c['min_idle_run'])} "
              f"AND idle_days >= {float(c['min_idle_share'])} * days)")
    fires = f"({run_ok} OR n_other > 0)" if c["concurrent_alone"] else run_ok
    return ctx.df(f"""
    WITH {stays_cte(ctx)},
    long AS (SELECT * FROM stays WHERE los >= {int(c['min_los'])}),
    days AS (SELECT settlement_id, unnest(generate_series(adm, dis - 1, INTERVAL 1 DAY))::DATE AS d
             FROM long),
    daily AS (
        SELECT l.settlement_id, l.service_time::DATE AS d,
               bool_and(coalesce(cat.item_class IN {idle}, false)) AS idle_only,
               sum(l.amount) AS amt
        FROM fee_lines l JOIN long USING (settlement_id) LEFT JOIN catalogue cat USING (item_code)
        WHERE l.qty > 0 GROUP BY ALL),
    flags AS (
        SELECT days.settlement_id, days.d, coalesce(daily.idle_only, {empty_idle}) AS idle,
               coalesce(daily.amt, 0) AS amt
        FROM days LEFT JOIN daily USING (settlement_id, d)),
    runs AS (
        SELECT settlement_id, d - CAST(row_number() OVER (PARTITION BY settlement_id ORDER BY d)
               AS INTEGER) AS grp
        FROM flags WHERE idle),
    run_len AS (SELECT settlement_id, max(n) AS max_run
                FROM (SELECT settlement_id, grp, count(*) AS n FROM runs GROUP BY ALL) GROUP BY 1),
    per_stay AS (
        SELECT settlement_id, count(*) FILTER (WHERE idle) AS idle_days, count(*) AS days,
               sum(amt) FILTER (WHERE idle) AS idle_amt
        FROM flags GROUP BY 1),
    concurrent AS (
        SELECT s.settlement_id, list(o.settlement_id) AS other_ids, count(*) AS n_other
        FROM long s JOIN settlements o
          ON o.person_id = s.person_id AND o.settlement_id <> s.settlement_id
         AND o.facility_id <> s.facility_id
         AND o.admission_time::DATE > s.adm AND o.admission_time::DATE < s.dis
        GROUP BY 1),
    scored AS (
        SELECT s.*, coalesce(r.max_run, 0) AS max_run, p.idle_days, p.days,
               coalesce(p.idle_amt, 0) AS idle_amt, coalesce(cc.n_other, 0) AS n_other,
               coalesce(cc.other_ids, []) AS other_ids
        FROM long s JOIN per_stay p USING (settlement_id)
        LEFT JOIN run_len r USING (settlement_id) LEFT JOIN concurrent cc USING (settlement_id))
    SELECT 'settlement' AS subject_type, settlement_id AS subject_id, facility_id, period,
           least(1.0, greatest(
               CASE WHEN {run_ok} THEN 0.5 * max_run / {int(c['min_idle_run'])} ELSE 0 END,
               CASE WHEN n_other > 0 THEN 0.6 ELSE 0 END) + 0.1 * least(n_other, 3)) AS score,
           CASE WHEN {run_ok} THEN idle_amt ELSE fund_paid END AS amount,
           to_json(struct_pack(person_id := person_id, staff_id := attending_staff_id,
               los := los, idle_days := idle_days, max_idle_run := max_run,
               idle_fees := round(idle_amt, 2), concurrent_settlements_elsewhere := n_other,
               total_amount := round(total_amount, 2)))::VARCHAR AS evidence,
           list_distinct(list_concat([settlement_id], other_ids)) AS settlement_ids
    FROM scored
    WHERE {fires}
    """)


@detector("fake_admission", title="虚假住院 fake / induced admission", model="M01",
          subjects=("settlement",), requires=("fee_lines",))
def fake_admission(ctx: Context) -> pd.DataFrame:
    """Stays with almost no therapy, from recruited cohorts or without any prior care for the dx.

    Fires when therapy fees (drugs, treatment, surgery, ...) are <= ``max_therapy_share`` and
    bed/nursing/consultation >= ``min_hotel_share`` of the stay, and (with
    ``require_cohort_or_no_prior``) the patient either had no outpatient visit for the same
    ICD-10 category in the prior ``prior_outpatient_days`` or was admitted with >= ``min_cohort``
    others of the same village/employer within ``cohort_window_days`` (``require``: cohort,
    cohort_or_no_prior or none).
    """
    c = ctx.cfg
    otp = sql_list(ctx.common["outpatient_medical_types"])
    w = int(c["cohort_window_days"])
    gates = {"cohort": f"cohort >= {int(c['min_cohort'])}",
             "cohort_or_no_prior": f"(prior_visits = 0 OR cohort >= {int(c['min_cohort'])})",
             "none": "true"}
    if c["require"] not in gates:
        raise SkipDetector(f"fake_admission.require must be one of {sorted(gates)}")
    gate = gates[c["require"]]
    return ctx.df(f"""
    WITH {stays_cte(ctx)}, {mix_cte(ctx)},
    cand AS (
        SELECT s.*, m.therapy_amt / nullif(m.line_total, 0) AS therapy_share,
               m.hotel_amt / nullif(m.line_total, 0) AS hotel_share, m.n_items
        FROM stays s JOIN mix m USING (settlement_id)
        WHERE m.line_total > 0
          AND m.therapy_amt <= {float(c['max_therapy_share'])} * m.line_total
          AND m.hotel_amt >= {float(c['min_hotel_share'])} * m.line_total),
    prior AS (
        SELECT c.settlement_id, count(o.settlement_id) AS prior_visits
        FROM cand c LEFT JOIN settlements o
          ON o.person_id = c.person_id AND o.medical_type IN {otp}
         AND left(o.main_diagnosis, 3) = left(c.main_diagnosis, 3)
         AND o.admission_time::DATE < c.adm
         AND o.admission_time::DATE >= c.adm - {int(c['prior_outpatient_days'])}
        GROUP BY 1),
    pc AS (SELECT c.settlement_id, c.person_id, c.facility_id, c.adm, p.village, p.employer
           FROM cand c JOIN persons p USING (person_id)),
    cohort AS (
        SELECT a.settlement_id, count(DISTINCT b.person_id) AS cohort
        FROM pc a JOIN pc b ON a.facility_id = b.facility_id AND a.person_id <> b.person_id
         AND abs(date_diff('day', a.adm, b.adm)) <= {w}
         AND (a.village = b.village OR a.employer = b.employer)
        GROUP BY 1),
    scored AS (
        SELECT c.*, coalesce(p.prior_visits, 0) AS prior_visits, coalesce(h.cohort, 0) AS cohort
        FROM cand c LEFT JOIN prior p USING (settlement_id)
        LEFT JOIN cohort h USING (settlement_id))
    SELECT 'settlement' AS subject_type, settlement_id AS subject_id, facility_id, period,
           least(1.0, 0.5 + 0.5 * (1 - therapy_share / {max(float(c['max_therapy_share']), 1e-9)})
                 * 0.5 + CASE WHEN cohort >= {int(c['min_cohort'])} THEN 0.2 ELSE 0 END
                 + CASE WHEN prior_visits = 0 THEN 0.05 ELSE 0 END) AS score,
           fund_paid AS amount,
           to_json(struct_pack(person_id := person_id, staff_id := attending_staff_id,
               los := los, therapy_share := round(therapy_share, 3),
               hotel_share := round(hotel_share, 3), n_items := n_items,
               prior_outpatient_visits_for_dx := prior_visits, cohort_admissions := cohort,
               main_diagnosis := main_diagnosis))::VARCHAR AS evidence,
           [settlement_id] AS settlement_ids
    FROM scored WHERE {gate}
    """)


@detector("split_admission", title="分解住院 split admissions", model="M03",
          subjects=("settlement",))
def split_admission(ctx: Context) -> pd.DataFrame:
    """Re-admission of the same person at the same facility within ``max_gap_days`` for the same dx.

    Consecutive stays per person and facility are paired with a window function; the pair fires
    when the gap (next admission - previous discharge) is within ``max_gap_days``, the main
    diagnoses share the first ``dx_match_chars`` characters, the re-admission is not flagged as
    planned and neither dx is an excluded cycle (chemo, dialysis). Amount: fund paid on the
    second stay.

    Score (legitimate readmissions are common, so a single pair says little; a facility that
    splits does it again and again): ``weight_gap`` × the gap (1 at 0 days, falling linearly to
    ``core_gap_share`` at ``core_gap_days`` and to 0 at ``max_gap_days``) + ``weight_same_dx`` if
    the full diagnosis code repeats + ``weight_same_doctor`` if the same attending doctor
    discharged and re-admitted + ``weight_facility`` × the facility's excess of such pairs
    over its peers (same facility type, itself excluded): the Poisson z of its pairs against
    stays × peer rate, full at ``facility_full_z``.
    """
    c = ctx.cfg
    n = int(c["dx_match_chars"])
    core, mx = int(c["core_gap_days"]), int(c["max_gap_days"])
    cs = float(c["core_gap_share"])
    excl = prefix_match("main_diagnosis", c["exclude_dx_prefixes"])
    pexcl = prefix_match("prev_dx", c["exclude_dx_prefixes"])
    planned = "AND NOT coalesce(planned_readmission, false)" if c["ignore_planned"] else ""
    return ctx.df(f"""
    WITH {stays_cte(ctx)},
    seq AS (
        SELECT *, lag(settlement_id) OVER w AS prev_id, lag(dis) OVER w AS prev_dis,
               lag(main_diagnosis) OVER w AS prev_dx, lag(discharge_way) OVER w AS prev_way,
               lag(fund_paid) OVER w AS prev_fund, lag(attending_staff_id) OVER w AS prev_staff
        FROM stays WINDOW w AS (PARTITION BY person_id, facility_id ORDER BY adm, settlement_id)),
    pairs AS (
        SELECT *, date_diff('day', prev_dis, adm) AS gap FROM seq
        WHERE prev_id IS NOT NULL
          AND left(main_diagnosis, {n}) = left(prev_dx, {n})
          AND NOT {excl} AND NOT {pexcl}
          AND coalesce(prev_way, '') NOT IN {sql_list(c['exclude_discharge_ways'])}
          {planned}),
    hits AS (SELECT * FROM pairs WHERE gap >= 0 AND gap <= {mx}),
    fac AS (
        SELECT s.facility_id, any_value(coalesce(f.facility_type, '')) AS ftype,
               count(*) AS n_stays,
               (SELECT count(*) FROM hits h WHERE h.facility_id = s.facility_id) AS n_pairs
        FROM stays s LEFT JOIN facilities f USING (facility_id) GROUP BY 1),
    peer AS (
        SELECT a.facility_id, a.n_pairs, a.n_stays,
               coalesce(sum(b.n_pairs) FILTER (WHERE b.ftype = a.ftype), 0) AS t_pairs,
               coalesce(sum(b.n_stays) FILTER (WHERE b.ftype = a.ftype), 0) AS t_stays,
               coalesce(sum(b.n_pairs), 0) AS c_pairs, coalesce(sum(b.n_stays), 0) AS c_stays
        FROM fac a LEFT JOIN fac b ON b.facility_id <> a.facility_id GROUP BY ALL),
    excess AS (
        SELECT facility_id, n_pairs, n_stays,
               n_stays * CASE WHEN t_stays > 0 THEN t_pairs / t_stays
                              WHEN c_stays > 0 THEN c_pairs / c_stays ELSE 0 END AS expected
        FROM peer),
    scored AS (
        SELECT h.*, e.n_pairs AS facility_pairs, e.expected AS facility_expected,
               (e.n_pairs - e.expected) / sqrt(e.expected + 1) AS facility_z,
               CASE WHEN gap <= {core} THEN 1 - (1 - {cs}) * gap / {max(core, 1)}
                    ELSE {cs} * ({mx} - gap) / {max(mx - core, 1)} END AS gap_score
        FROM hits h JOIN excess e USING (facility_id))
    SELECT 'settlement' AS subject_type, settlement_id AS subject_id, facility_id, period,
           least(1.0, {float(c['weight_gap'])} * gap_score
               + CASE WHEN main_diagnosis = prev_dx THEN {float(c['weight_same_dx'])} ELSE 0 END
               + CASE WHEN attending_staff_id = prev_staff
                      THEN {float(c['weight_same_doctor'])} ELSE 0 END
               + {float(c['weight_facility'])}
                 * greatest(0.0, least(1.0, facility_z / {float(c['facility_full_z'])})))
               AS score,
           fund_paid AS amount,
           to_json(struct_pack(person_id := person_id, staff_id := attending_staff_id,
               previous_settlement_id := prev_id, gap_days := gap, main_diagnosis := main_diagnosis,
               previous_diagnosis := prev_dx, previous_staff_id := prev_staff,
               previous_fund_paid := round(prev_fund, 2), facility_pairs := facility_pairs,
               facility_expected_pairs := round(facility_expected, 2),
               facility_excess_z := round(facility_z, 2)))::VARCHAR AS evidence,
           [prev_id, settlement_id] AS settlement_ids
    FROM scored
    """)


@detector("low_indication_admission", title="轻症/体检式住院 low-indication admission",
          model="M04", subjects=("settlement",), requires=("fee_lines",))
def low_indication_admission(ctx: Context) -> pd.DataFrame:
    """Stays dominated by lab and imaging with little treatment (check-up-style admissions).

    Fires when exam fees >= ``min_exam_share`` of the stay from a battery of >=
    ``min_exam_items`` distinct tests, therapy fees <= ``max_therapy_share`` and at most
    ``max_therapy_items`` distinct therapy items were given;
    a main dx from ``light_dx_prefixes`` raises the score by ``light_dx_bonus``.
    """
    c = ctx.cfg
    light = prefix_match("main_diagnosis", c["light_dx_prefixes"])
    return ctx.df(f"""
    WITH {stays_cte(ctx)}, {mix_cte(ctx)},
    cand AS (
        SELECT s.*, m.exam_amt / m.line_total AS exam_share,
               m.therapy_amt / m.line_total AS therapy_share, m.n_therapy_items, m.n_exam_items,
               {light} AS light_dx
        FROM stays s JOIN mix m USING (settlement_id)
        WHERE m.line_total > 0
          AND m.exam_amt >= {float(c['min_exam_share'])} * m.line_total
          AND m.therapy_amt <= {float(c['max_therapy_share'])} * m.line_total
          AND m.n_therapy_items <= {int(c['max_therapy_items'])}
          AND m.n_exam_items >= {int(c['min_exam_items'])})
    SELECT 'settlement' AS subject_type, settlement_id AS subject_id, facility_id, period,
           least(1.0, 0.5 + 0.5 * (exam_share - {float(c['min_exam_share'])})
                 / {max(1 - float(c['min_exam_share']), 1e-9)}
                 + CASE WHEN light_dx THEN {float(c['light_dx_bonus'])} ELSE 0 END) AS score,
           fund_paid AS amount,
           to_json(struct_pack(person_id := person_id, staff_id := attending_staff_id,
               los := los, exam_share := round(exam_share, 3),
               therapy_share := round(therapy_share, 3), therapy_items := n_therapy_items,
               exam_items := n_exam_items,
               main_diagnosis := main_diagnosis, light_diagnosis := light_dx))::VARCHAR
               AS evidence,
           [settlement_id] AS settlement_ids
    FROM cand
    """)


@detector("group_admission", title="集中住院 group admissions", model="M05",
          subjects=("facility",))
def group_admission(ctx: Context) -> pd.DataFrame:
    """Bursts of >= ``min_persons`` admissions from one village/employer at one facility.

    For every admission the distinct persons of the same group admitted to the same facility in
    the next ``window_days`` are counted (a range self-join); admissions inside a qualifying
    window are merged into episodes, and an episode fires when the group also makes up >=
    ``min_facility_share`` of the facility's admissions in those days and >= ``min_lift`` x its
    usual share there (a big employer at a big hospital, a village at its township health
    centre, is normal).
    """
    c = ctx.cfg
    w = int(c["window_days"])
    keys = [k for k in c["group_keys"] if k in ("village", "employer")]
    if not keys:
        raise SkipDetector("no usable group_keys configured (village, employer)")
    grp = " UNION ALL ".join(
        f"SELECT a.*, '{k}' AS gtype, p.{k} AS gkey FROM adm a JOIN persons p USING (person_id) "
        f"WHERE p.{k} IS NOT NULL AND p.{k} <> ''" for k in keys)
    return ctx.df(f"""
    WITH {stays_cte(ctx)},
    adm AS (SELECT settlement_id, person_id, facility_id, adm AS d, fund_paid FROM stays),
    grp AS ({grp}),
    win AS (
        SELECT a.facility_id, a.gtype, a.gkey, a.d AS start
        FROM grp a JOIN grp b ON a.facility_id = b.facility_id AND a.gtype = b.gtype
         AND a.gkey = b.gkey AND b.d >= a.d AND b.d < a.d + {w}
        GROUP BY ALL HAVING count(DISTINCT b.person_id) >= {int(c['min_persons'])}),
    members AS (
        SELECT DISTINCT g.* FROM grp g JOIN win ON g.facility_id = win.facility_id
         AND g.gtype = win.gtype AND g.gkey = win.gkey AND g.d >= win.start
         AND g.d < win.start + {w}),
    isl AS (
        SELECT *, sum(CASE WHEN prev_d IS NULL OR d - prev_d > {w} THEN 1 ELSE 0 END)
                  OVER (PARTITION BY facility_id, gtype, gkey ORDER BY d, settlement_id) AS ep
        FROM (SELECT *, lag(d) OVER (PARTITION BY facility_id, gtype, gkey
                                      ORDER BY d, settlement_id) AS prev_d FROM members)),
    eps AS (
        SELECT facility_id, gtype, gkey, ep, min(d) AS first_day, max(d) AS last_day,
               count(DISTINCT person_id) AS persons, sum(fund_paid) AS fund,
               {ids('settlement_id', ctx)} AS settlement_ids
        FROM isl GROUP BY ALL),
    fac AS (
        SELECT e.facility_id, e.gtype, e.gkey, e.ep, count(DISTINCT a.person_id) AS fac_persons
        FROM eps e JOIN adm a ON a.facility_id = e.facility_id
         AND a.d BETWEEN e.first_day AND e.last_day
        GROUP BY ALL),
    base AS (
        SELECT g.facility_id, g.gtype, g.gkey, count(*) / any_value(t.n) AS base_share
        FROM grp g JOIN (SELECT facility_id, count(*) AS n FROM adm GROUP BY 1) t
          USING (facility_id)
        GROUP BY ALL)
    SELECT 'facility' AS subject_type, e.facility_id AS subject_id, e.facility_id,
           strftime(e.first_day, '%Y-%m') AS period,
           least(1.0, 0.5 * e.persons / {int(c['min_persons'])}
                 * (0.5 + 0.5 * e.persons / f.fac_persons)) AS score,
           e.fund AS amount,
           to_json(struct_pack(group_type := e.gtype, group_key := e.gkey, persons := e.persons,
               first_day := e.first_day, last_day := e.last_day,
               facility_admitted_persons := f.fac_persons,
               group_share := round(e.persons / f.fac_persons, 3),
               usual_share := round(b.base_share, 4)))::VARCHAR AS evidence,
           e.settlement_ids
    FROM eps e JOIN fac f USING (facility_id, gtype, gkey, ep)
    JOIN base b USING (facility_id, gtype, gkey)
    WHERE e.persons >= {int(c['min_persons'])}
      AND e.persons >= {float(c['min_facility_share'])} * f.fac_persons
      AND e.persons / f.fac_persons >= {float(c['min_lift'])} * b.base_share
    """)


@detector("templated_items", title="医疗项目雷同 templated identical item lists", model="M06",
          subjects=("facility", "staff"), requires=("fee_lines",))
def templated_items(ctx: Context) -> pd.DataFrame:
    """Clusters of near-identical item lists across different patients of one facility.

    Each stay's items (with ``use_quantities``: item and total quantity, so a copied order sheet
    matches but two stays of different length do not) get a MinHash signature (``n_hashes``)
    in SQL; stays sharing
    a band (``band_size`` rows) at the same facility are candidate pairs (bands shared by more
    than ``max_bucket`` stays are ignored), the exact Jaccard similarity is computed for the
    candidates and pairs >= ``min_jaccard`` between different persons are linked. Connected
    clusters with >= ``min_cluster`` patients and >= ``min_distinct_dx`` main diagnoses fire;
    the subject is the doctor when one wrote most of them.
    """
    c = ctx.cfg
    nh, bs = int(c["n_hashes"]), int(c["band_size"])
    types = sql_list(c["medical_types"])
    token = ("l.item_code || ':' || CAST(round(sum(l.qty), 1) AS VARCHAR)"
             if c["use_quantities"] else "l.item_code")
    pairs = ctx.df(f"""
    WITH st AS (SELECT settlement_id, person_id, facility_id FROM settlements
                WHERE medical_type IN {types}),
    items AS (SELECT l.settlement_id, {token} AS item_code, any_value(st.facility_id)
                     AS facility_id
              FROM fee_lines l JOIN st USING (settlement_id) WHERE l.qty > 0
              GROUP BY l.settlement_id, l.item_code),
    big AS (SELECT settlement_id FROM items GROUP BY 1 HAVING count(*) >= {int(c['min_items'])}),
    mh AS (SELECT i.settlement_id, i.facility_id, h.k,
                  min(hash(i.item_code || '#' || CAST(h.k AS VARCHAR))) AS m
           FROM items i SEMI JOIN big USING (settlement_id) CROSS JOIN range({nh}) h(k)
           GROUP BY ALL),
    bands AS (SELECT settlement_id, facility_id, k // {bs} AS band,
                     hash(list(m ORDER BY k)) AS bh FROM mh GROUP BY ALL),
    buckets AS (SELECT facility_id, band, bh FROM bands GROUP BY ALL
                HAVING count(*) BETWEEN 2 AND {int(c['max_bucket'])}),
    cand AS (SELECT DISTINCT a.settlement_id AS s1, b.settlement_id AS s2
             FROM bands a SEMI JOIN buckets USING (facility_id, band, bh)
             JOIN bands b ON a.facility_id = b.facility_id AND a.band = b.band AND a.bh = b.bh
              AND a.settlement_id < b.settlement_id),
    cand2 AS (SELECT c.* FROM cand c JOIN st x ON x.settlement_id = c.s1
              JOIN st y ON y.settlement_id = c.s2 WHERE x.person_id <> y.person_id),
    sets AS (SELECT settlement_id, list(item_code) AS toks FROM items GROUP BY 1),
    inter AS (SELECT c.s1, c.s2, len(list_intersect(a.toks, b.toks)) AS n,
                     len(a.toks) AS n1, len(b.toks) AS n2
              FROM cand2 c JOIN sets a ON a.settlement_id = c.s1
              JOIN sets b ON b.settlement_id = c.s2)
    SELECT s1, s2, n / (n1 + n2 - n) AS jaccard FROM inter
    WHERE n / (n1 + n2 - n) >= {float(c['min_jaccard'])}
    """)
    if pairs.empty:
        return pd.DataFrame()
    names = pd.unique(pd.concat([pairs.s1, pairs.s2], ignore_index=True))
    index = {s: i for i, s in enumerate(names)}
    g = ig.Graph(n=len(names), edges=list(zip(pairs.s1.map(index), pairs.s2.map(index),
                                              strict=True)))
    comp = pd.DataFrame({"settlement_id": names, "cluster": g.connected_components().membership})
    ctx.con.register("_tmpl_clusters", comp)
    ctx.con.register("_tmpl_pairs", pairs)
    try:
        return ctx.df(f"""
        WITH m AS (SELECT k.cluster, s.* FROM _tmpl_clusters k
                   JOIN settlements s USING (settlement_id)),
        sim AS (SELECT k.cluster, avg(p.jaccard) AS mean_jaccard
                FROM _tmpl_pairs p JOIN _tmpl_clusters k ON k.settlement_id = p.s1 GROUP BY 1),
        doc AS (SELECT cluster, attending_staff_id, count(*) AS n,
                       row_number() OVER (PARTITION BY cluster ORDER BY count(*) DESC,
                                          attending_staff_id) AS r
                FROM m WHERE attending_staff_id IS NOT NULL GROUP BY cluster, attending_staff_id),
        agg AS (SELECT cluster, any_value(facility_id) AS facility_id,
                       count(DISTINCT person_id) AS persons, count(*) AS stays,
                       count(DISTINCT left(main_diagnosis, 3)) AS n_dx,
                       min(strftime(admission_time, '%Y-%m')) AS period,
                       sum(fund_paid) AS fund, {ids('settlement_id', ctx)} AS settlement_ids
                FROM m GROUP BY 1)
        SELECT CASE WHEN d.n >= 0.8 * a.stays THEN 'staff' ELSE 'facility' END AS subject_type,
               CASE WHEN d.n >= 0.8 * a.stays THEN d.attending_staff_id ELSE a.facility_id END
                   AS subject_id,
               a.facility_id, a.period,
               least(1.0, 0.5 * a.persons / {int(c['min_cluster'])}
                     * (0.6 + 0.4 * least(a.n_dx, 4) / 4.0)) AS score,
               a.fund AS amount,
               to_json(struct_pack(patients := a.persons, stays := a.stays,
                   distinct_diagnoses := a.n_dx, mean_jaccard := round(s.mean_jaccard, 3),
                   top_doctor := d.attending_staff_id, top_doctor_stays := d.n))::VARCHAR
                   AS evidence,
               a.settlement_ids
        FROM agg a JOIN sim s USING (cluster) LEFT JOIN doc d ON d.cluster = a.cluster AND d.r = 1
        WHERE a.persons >= {int(c['min_cluster'])} AND a.n_dx >= {int(c['min_distinct_dx'])}
        """)
    finally:
        ctx.con.unregister("_tmpl_clusters")
        ctx.con.unregister("_tmpl_pairs")


@detector("bed_overuse", title="床位率异常 abnormal bed occupancy", model="M07",
          subjects=("facility",))
def bed_overuse(ctx: Context) -> pd.DataFrame:
    """Facility-months whose census exceeds the approved beds.

    Daily census = stays in bed that night (from settlements); occupancy = patient-days /
    (approved beds x days in the month). Fires when occupancy > ``max_occupancy`` or the peak
    census > ``max_peak_ratio`` x beds. Amount: the excess share of the month's inpatient fund.
    Needs ``facilities.beds`` (registry data, absent from the settlement interfaces).
    """
    c = ctx.cfg
    n_beds = ctx.con.execute("SELECT count(*) FROM facilities WHERE beds > 0").fetchone()[0]
    if not n_beds:
        raise SkipDetector("no facility has approved beds (facilities.beds) recorded")
    return ctx.df(f"""
    WITH {stays_cte(ctx)},
    nights AS (SELECT settlement_id, facility_id, fund_paid, los,
                      unnest(generate_series(adm, dis - 1, INTERVAL 1 DAY))::DATE AS d
               FROM stays WHERE dis > adm),
    census AS (SELECT facility_id, d, count(*) AS n FROM nights GROUP BY ALL),
    month AS (
        SELECT c.facility_id, strftime(c.d, '%Y-%m') AS period, sum(c.n) AS patient_days,
               max(c.n) AS peak, any_value(f.beds) AS beds,
               any_value(date_part('day', last_day(c.d))) AS days_in_month
        FROM census c JOIN facilities f USING (facility_id) WHERE f.beds > 0 GROUP BY ALL),
    fired AS (
        SELECT *, patient_days / (beds * days_in_month) AS occupancy FROM month
        WHERE patient_days >= {int(c['min_patient_days'])}
          AND (patient_days > {float(c['max_occupancy'])} * beds * days_in_month
               OR peak > {float(c['max_peak_ratio'])} * beds)),
    money AS (
        SELECT f.facility_id, f.period, sum(n.fund_paid / n.los) AS fund_nights,
               {ids('n.settlement_id', ctx)} AS settlement_ids
        FROM fired f JOIN nights n ON n.facility_id = f.facility_id
         AND strftime(n.d, '%Y-%m') = f.period GROUP BY ALL)
    SELECT 'facility' AS subject_type, f.facility_id AS subject_id, f.facility_id, f.period,
           least(1.0, 0.5 * greatest(f.occupancy / {float(c['max_occupancy'])},
                                     f.peak / ({float(c['max_peak_ratio'])} * f.beds))) AS score,
           m.fund_nights * greatest(0, 1 - 1 / greatest(f.occupancy, f.peak / f.beds)) AS amount,
           to_json(struct_pack(beds := f.beds, patient_days := f.patient_days,
               occupancy := round(f.occupancy, 3), peak_census := f.peak,
               days_in_month := f.days_in_month))::VARCHAR AS evidence,
           m.settlement_ids
    FROM fired f JOIN money m USING (facility_id, period)
    """)


@detector("drg_upcoding", title="高编高套 DRG/DIP up-coding", model="M21",
          subjects=("facility",))
def drg_upcoding(ctx: Context) -> pd.DataFrame:
    """Facility-years whose share of stays in MCC/CC groups is far above their peers.

    The DRG code's last character marks severity (CHS-DRG: 1 MCC, 3 CC). Per facility and year
    the MCC+CC share is compared with the median of facilities of the same type (all facilities
    when fewer than ``min_peers``); fires at >= ``min_share`` and >= peer median +
    ``min_excess_over_peers``, or on the MCC share alone at >= ``min_mcc_share`` and >= peer
    median + ``min_mcc_excess``. Amount: fund paid on the flagged stays in excess of the peer
    share; MCC stays are listed first.
    """
    c = ctx.cfg
    sev = sql_list(list(c["mcc_suffixes"]) + list(c["cc_suffixes"]))
    mcc = sql_list(c["mcc_suffixes"])
    return ctx.df(f"""
    WITH {stays_cte(ctx)},
    coded AS (SELECT s.*, right(s.drg_code, 1) IN {sev} AS severe,
                     right(s.drg_code, 1) IN {mcc} AS is_mcc, f.facility_type,
                     strftime(s.adm, '%Y') AS year
              FROM stays s JOIN facilities f USING (facility_id)
              WHERE s.drg_code IS NOT NULL AND s.drg_code <> ''),
    fy AS (SELECT facility_id, any_value(facility_type) AS facility_type, year,
                  count(*) AS n, avg(CASE WHEN severe THEN 1.0 ELSE 0.0 END) AS share,
                  avg(CASE WHEN is_mcc THEN 1.0 ELSE 0.0 END) AS mshare,
                  sum(fund_paid) FILTER (WHERE severe) AS severe_fund,
                  sum(fund_paid) FILTER (WHERE is_mcc) AS mcc_fund,
                  list_slice(
                      coalesce(list_sort(list(DISTINCT settlement_id) FILTER (WHERE is_mcc)), [])
                      || coalesce(list_sort(list(DISTINCT settlement_id) FILTER (
                          WHERE severe AND NOT is_mcc)), []), 1, {ctx.cap}) AS settlement_ids
           FROM coded GROUP BY facility_id, year),
    elig AS (SELECT * FROM fy WHERE n >= {int(c['min_stays'])}),
    peer_t AS (SELECT facility_type, year, median(share) AS med, median(mshare) AS mmed,
                      count(*) AS k
               FROM elig GROUP BY ALL),
    peer_all AS (SELECT year, median(share) AS med, median(mshare) AS mmed FROM elig GROUP BY 1),
    j AS (SELECT e.*, CASE WHEN t.k >= {int(c['min_peers'])} THEN t.med ELSE a.med END AS peer,
                 CASE WHEN t.k >= {int(c['min_peers'])} THEN t.mmed ELSE a.mmed END AS mpeer
          FROM elig e JOIN peer_all a USING (year) LEFT JOIN peer_t t USING (facility_type, year)),
    f AS (SELECT *, share >= {float(c['min_share'])}
                    AND share >= peer + {float(c['min_excess_over_peers'])} AS cc_fired,
                 mshare >= {float(c['min_mcc_share'])}
                    AND mshare >= mpeer + {float(c['min_mcc_excess'])} AS mcc_fired
          FROM j)
    SELECT 'facility' AS subject_type, facility_id AS subject_id, facility_id, year AS period,
           least(1.0, greatest(
               0.5 * (share - peer) / {max(float(c['min_excess_over_peers']), 1e-9)},
               0.5 * (mshare - mpeer) / {max(float(c['min_mcc_excess']), 1e-9)})) AS score,
           CASE WHEN mcc_fired THEN coalesce(mcc_fund, 0) * (mshare - mpeer) / mshare
                ELSE coalesce(severe_fund, 0) * (share - peer) / share END AS amount,
           to_json(struct_pack(stays := n, mcc_share := round(mshare, 3),
               peer_median_mcc := round(mpeer, 3), mcc_cc_share := round(share, 3),
               peer_median_mcc_cc := round(peer, 3), facility_type := facility_type))::VARCHAR
               AS evidence,
           settlement_ids
    FROM f WHERE cc_fired OR mcc_fired
    """)
