"""Outpatient and special-treatment screening models: M13-M17 and M20 of BRIEF §2.2."""

from __future__ import annotations

import pandas as pd

from fraudscan.leads.detectors._sql import ids
from fraudscan.leads.registry import Context, SkipDetector, detector, prefix_match, sql_list


@detector("doctor_shopping", title="跨机构频繁就诊 doctor shopping", model="M13",
          subjects=("person",))
def doctor_shopping(ctx: Context) -> pd.DataFrame:
    """Persons collecting the same drug from many facilities within ``window_days``.

    With fee lines: for every outpatient/pharmacy purchase of a drug group (catalogue
    ``drug_group``, else the item) the person's purchases of that group in the following
    ``window_days`` are counted with a range self-join; >= ``min_facilities`` distinct
    facilities whose days' supply adds up to >= ``min_supply_ratio`` x the window fire
    (overlapping supplies, national rules #50-51; a short antibiotic course from several
    clinics does not). Without fee lines any visits
    count, with >= ``min_facilities_any`` facilities or >= ``min_visits`` visits. Purchases paid
    wholly in cash are not the fund's business and are left out. One lead per
    person reports the strongest window; amount is the fund paid on the firing windows' claims.
    """
    c = ctx.cfg
    w = int(c["window_days"])
    otp = sql_list(ctx.common["outpatient_medical_types"])
    if ctx.has("fee_lines"):
        v = f"""SELECT s.settlement_id, any_value(s.person_id) AS person_id,
                       any_value(s.facility_id) AS facility_id,
                       any_value(s.admission_time)::DATE AS d,
                       any_value(s.fund_paid) AS fund_paid,
                       coalesce(cat.drug_group, l.item_code) AS grp,
                       coalesce(sum(l.days_supply), 0) AS supply
                FROM fee_lines l JOIN settlements s USING (settlement_id)
                JOIN catalogue cat USING (item_code)
                WHERE s.medical_type IN {otp} AND l.qty > 0
                  AND s.fund_paid + s.account_paid > 0
                  AND cat.item_class IN {sql_list(c['drug_classes'])}
                GROUP BY s.settlement_id, coalesce(cat.drug_group, l.item_code)"""
        having = (f"count(DISTINCT b.facility_id) >= {int(c['min_facilities'])} "
                  f"AND sum(b.supply) >= {float(c['min_supply_ratio'])} * {w}")
        lim_f, lim_v = int(c["min_facilities"]), 10**9
    else:
        ctx.notes.append("fee_lines absent: any visits counted (no drug groups)")
        v = f"""SELECT settlement_id, person_id, facility_id, admission_time::DATE AS d,
                       fund_paid, 'any' AS grp, 0 AS supply
                FROM settlements WHERE medical_type IN {otp}
                  AND fund_paid + account_paid > 0"""
        lim_f, lim_v = int(c["min_facilities_any"]), int(c["min_visits"])
        having = (f"count(DISTINCT b.facility_id) >= {lim_f} "
                  f"OR count(DISTINCT b.settlement_id) >= {lim_v}")
    return ctx.df(f"""
    WITH v AS ({v}),
    win AS (
        SELECT a.person_id, a.grp, a.d AS start, count(DISTINCT b.facility_id) AS facilities,
               count(DISTINCT b.settlement_id) AS visits
        FROM v a JOIN v b ON a.person_id = b.person_id AND a.grp = b.grp
         AND b.d >= a.d AND b.d < a.d + {w}
        GROUP BY ALL HAVING {having}),
    best AS (
        SELECT person_id, arg_max(start, facilities * 1000 + visits) AS start,
               arg_max(grp, facilities * 1000 + visits) AS grp,
               max(facilities) AS max_facilities, max(visits) AS max_visits
        FROM win GROUP BY 1),
    members AS (
        SELECT DISTINCT w.person_id, v.settlement_id, v.facility_id, v.fund_paid
        FROM win w JOIN v ON v.person_id = w.person_id AND v.grp = w.grp
         AND v.d >= w.start AND v.d < w.start + {w}),
    agg AS (SELECT person_id, sum(fund_paid) AS fund, count(DISTINCT facility_id) AS facilities,
                   mode(facility_id) AS top_facility, {ids('settlement_id', ctx)} AS settlement_ids
            FROM members GROUP BY 1)
    SELECT 'person' AS subject_type, b.person_id AS subject_id, a.top_facility AS facility_id,
           strftime(b.start, '%Y-%m') AS period,
           least(1.0, 0.5 * greatest(b.max_facilities / {lim_f}, b.max_visits / {lim_v})) AS score,
           a.fund AS amount,
           to_json(struct_pack(window_days := {w}, drug_group := b.grp,
               max_facilities_in_window := b.max_facilities,
               max_visits_in_window := b.max_visits, window_start := b.start,
               facilities_in_firing_windows := a.facilities))::VARCHAR AS evidence,
           a.settlement_ids
    FROM best b JOIN agg a USING (person_id)
    """)


@detector("group_visits", title="集中就诊/集中报销 group visits and batch reimbursements",
          model="M14/M15", subjects=("facility",))
def group_visits(ctx: Context) -> pd.DataFrame:
    """Bursts of many different persons settling at one facility within ``window_minutes``.

    A window function counts the settlements in the ``window_minutes`` after each settlement
    per facility; a window fires at >= ``min_persons`` distinct persons and >=
    ``min_ratio_to_typical`` x the facility's typical window (a busy hospital is not a burst):
    the median over its days of each day's median window, so bursts on a minority of days do
    not raise it (a small clinic with many bursts would otherwise hide them). Settlements with
    a main diagnosis in ``exclude_dx_prefixes`` (dialysis: whole shifts settle together, the
    same patients every week) are left out.
    Firing windows are merged into bursts and reported per facility-month for facilities with
    >= ``min_bursts`` bursts in which >= ``min_repeat_share`` of the cards come back in another
    burst (多次集中报销 with the same cards; a one-off outbreak or a busy morning is not); more
    bursts raise the score.
    """
    c = ctx.cfg
    col = c["time_column"]
    if col not in ("settle_time", "admission_time"):
        raise SkipDetector(f"time_column must be settle_time or admission_time, not {col!r}")
    mins = int(c["window_minutes"])
    otp = sql_list(ctx.common["outpatient_medical_types"])
    skip_dx = prefix_match("coalesce(main_diagnosis, '')", c["exclude_dx_prefixes"])
    return ctx.df(f"""
    WITH v AS (SELECT settlement_id, person_id, facility_id, {col} AS t, fund_paid, total_amount
               FROM settlements WHERE medical_type IN {otp} AND {col} IS NOT NULL
                 AND NOT {skip_dx}),
    w AS (SELECT *, count(*) OVER (PARTITION BY facility_id ORDER BY t RANGE BETWEEN CURRENT ROW
                     AND INTERVAL {mins} MINUTES FOLLOWING) AS n_win FROM v),
    typical AS (SELECT facility_id, median(day_typ) AS typ
                FROM (SELECT facility_id, t::DATE AS d, median(n_win) AS day_typ FROM w
                      GROUP BY ALL) GROUP BY 1),
    anchors AS (SELECT w.facility_id, w.t FROM w JOIN typical USING (facility_id)
                WHERE w.n_win >= {int(c['min_persons'])}
                  AND w.n_win >= {float(c['min_ratio_to_typical'])} * typical.typ),
    members AS (SELECT DISTINCT v.* FROM anchors a JOIN v ON v.facility_id = a.facility_id
                AND v.t >= a.t AND v.t <= a.t + INTERVAL {mins} MINUTES),
    isl AS (SELECT *, sum(CASE WHEN prev_t IS NULL OR t - prev_t > INTERVAL {mins} MINUTES
                          THEN 1 ELSE 0 END) OVER (PARTITION BY facility_id ORDER BY t,
                          settlement_id) AS burst
            FROM (SELECT *, lag(t) OVER (PARTITION BY facility_id ORDER BY t, settlement_id)
                  AS prev_t FROM members)),
    bursts AS (SELECT facility_id, burst, min(t) AS t0, max(t) AS t1,
                      count(DISTINCT person_id) AS persons
               FROM isl GROUP BY ALL HAVING count(DISTINCT person_id) >= {int(c['min_persons'])}),
    pb AS (SELECT i.facility_id, i.person_id, count(DISTINCT i.burst) AS nb
           FROM isl i SEMI JOIN bursts b USING (facility_id, burst) GROUP BY ALL),
    rep AS (SELECT i.facility_id, i.burst,
                   avg(CASE WHEN pb.nb >= 2 THEN 1.0 ELSE 0.0 END) AS repeat_share
            FROM isl i SEMI JOIN bursts b USING (facility_id, burst)
            JOIN pb USING (facility_id, person_id) GROUP BY ALL),
    kept AS (SELECT i.* FROM isl i JOIN rep USING (facility_id, burst)
             WHERE {int(c['min_bursts'])} <= 1
                OR rep.repeat_share >= {float(c['min_repeat_share'])}),
    fm AS (SELECT k.facility_id, strftime(k.t, '%Y-%m') AS period,
                  count(DISTINCT k.burst) AS bursts, count(DISTINCT k.person_id) AS persons,
                  count(*) AS settlements, sum(k.fund_paid) AS fund,
                  avg(CASE WHEN k.total_amount = round(k.total_amount, -1) THEN 1.0 ELSE 0 END)
                      AS round_share,
                  {ids('k.settlement_id', ctx)} AS settlement_ids
           FROM kept k GROUP BY ALL),
    tot AS (SELECT facility_id, count(DISTINCT burst) AS all_bursts FROM kept GROUP BY 1
            HAVING count(DISTINCT burst) >= {int(c['min_bursts'])}),
    mx AS (SELECT facility_id, strftime(t0, '%Y-%m') AS period, max(persons) AS max_persons
           FROM bursts GROUP BY ALL)
    SELECT 'facility' AS subject_type, fm.facility_id AS subject_id, fm.facility_id, fm.period,
           least(1.0, 0.5 * mx.max_persons / {int(c['min_persons'])}
                 + 0.1 * least(tot.all_bursts - 1, 3)) AS score,
           fm.fund AS amount,
           to_json(struct_pack(bursts_in_month := fm.bursts, bursts_total := tot.all_bursts,
               persons := fm.persons, settlements := fm.settlements,
               max_persons_in_burst := mx.max_persons, typical_window := t.typ,
               window_minutes := {mins}, round_amount_share := round(fm.round_share, 3)))::VARCHAR
               AS evidence,
           fm.settlement_ids
    FROM fm JOIN tot USING (facility_id) JOIN mx USING (facility_id, period)
    JOIN typical t USING (facility_id)
    """)


@detector("dialysis_overbilling", title="血液透析 haemodialysis over-billing", model="M16",
          subjects=("person",), requires=("fee_lines",))
def dialysis_overbilling(ctx: Context) -> pd.DataFrame:
    """Dialysis sessions per patient above the clinical pattern, per patient, centre and month.

    Sessions are the quantities of ``item_classes`` lines per person, facility and day. Within
    each ISO week sessions are ranked by how usual their weekday is for the patient (a fixed
    Mon/Wed/Fri schedule makes an extra Tuesday stand out); excess sessions are those beyond
    the ``max_sessions_per_week``-th of the week, beyond ``max_sessions_per_day`` a day, and
    sessions at a second facility the same day. A twice-weekly patient billed a third session
    stays under the weekly cap, so a session is also excess when it is *off schedule*: on a
    weekday holding < ``off_schedule_max_weekday_share`` of the patient's sessions (patients
    with >= ``off_schedule_min_sessions`` sessions), and with ``off_schedule_consecutive`` only
    when it falls on the day before or after another session (haemodialysis alternates days).
    With ``after_death`` sessions dated after the patient's death are excess too.
    Patient-months with >= ``min_excess_sessions`` fire; the lead lists exactly the excess
    claims. Amount: their dialysis fees.
    """
    c = ctx.cfg
    consecutive = "least(gap_prev, gap_next) <= 1" if c["off_schedule_consecutive"] else "true"
    after_death = "dl.d > p.death_date" if c["after_death"] else "false"
    return ctx.df(f"""
    WITH dl AS (
        SELECT l.settlement_id, s.person_id, s.facility_id, l.service_time::DATE AS d,
               min(l.service_time) AS t, sum(l.qty) AS qty, sum(l.amount) AS amount
        FROM fee_lines l JOIN catalogue cat USING (item_code)
        JOIN settlements s USING (settlement_id)
        WHERE cat.item_class IN {sql_list(c['item_classes'])} AND l.qty > 0
        GROUP BY ALL),
    usual AS (SELECT person_id, dayofweek(d) AS dow,
                     count(*) / sum(count(*)) OVER (PARTITION BY person_id) AS dow_share,
                     sum(count(*)) OVER (PARTITION BY person_id) AS n_sessions
              FROM dl GROUP BY person_id, dayofweek(d)),
    ranked AS (
        SELECT dl.*, u.dow_share, u.n_sessions,
               coalesce({after_death}, false) AS after_death,
               date_diff('day', lag(dl.d) OVER (PARTITION BY dl.person_id ORDER BY dl.d, dl.t),
                         dl.d) AS gap_prev,
               date_diff('day', dl.d,
                         lead(dl.d) OVER (PARTITION BY dl.person_id ORDER BY dl.d, dl.t))
                   AS gap_next,
               sum(qty) OVER (PARTITION BY dl.person_id, date_trunc('week', d)
                              ORDER BY u.dow_share DESC, t, settlement_id) AS cum_week,
                  sum(qty) OVER (PARTITION BY dl.person_id, d ORDER BY t, settlement_id) AS cum_day,
                  count(DISTINCT facility_id) OVER (PARTITION BY dl.person_id, d) AS facs_day,
                  row_number() OVER (PARTITION BY dl.person_id, d ORDER BY t, settlement_id)
                      AS nth
        FROM dl JOIN usual u ON u.person_id = dl.person_id AND u.dow = dayofweek(dl.d)
        LEFT JOIN persons p ON p.person_id = dl.person_id),
    ex AS (
        SELECT *, greatest(least(qty, cum_week - {float(c['max_sessions_per_week'])}),
                           least(qty, cum_day - {float(c['max_sessions_per_day'])}),
                           CASE WHEN facs_day > 1 AND nth > 1 THEN qty ELSE 0 END,
                           CASE WHEN off_schedule OR after_death THEN qty ELSE 0 END, 0)
                  AS excess
        FROM (SELECT *, n_sessions >= {int(c['off_schedule_min_sessions'])}
                        AND dow_share < {float(c['off_schedule_max_weekday_share'])}
                        AND coalesce({consecutive}, false) AS off_schedule
              FROM ranked)),
    pm AS (
        SELECT person_id, facility_id, strftime(d, '%Y-%m') AS period, sum(excess) AS excess,
               sum(amount * excess / qty) AS amt, count(*) AS sessions_billed,
               list_sort(list(settlement_id) FILTER (WHERE excess > 0)) AS sids,
               max(cum_week) AS max_week,
               count(*) FILTER (WHERE off_schedule) AS off_schedule,
               count(*) FILTER (WHERE after_death) AS after_death
        FROM ex GROUP BY ALL)
    SELECT 'person' AS subject_type, person_id AS subject_id, facility_id, period,
           least(1.0, 0.5 * excess / {float(c['min_excess_sessions'])}) AS score,
           amt AS amount,
           to_json(struct_pack(excess_sessions := excess, sessions_billed := sessions_billed,
               max_sessions_in_a_week := max_week,
               max_per_week := {float(c['max_sessions_per_week'])},
               off_schedule_sessions := off_schedule,
               sessions_after_death := after_death))::VARCHAR AS evidence,
           list_slice(sids, 1, {ctx.cap}) AS settlement_ids
    FROM pm WHERE excess >= {float(c['min_excess_sessions'])}
    """)


@detector("rehab_overbilling", title="康复理疗 rehabilitation over-billing", model="M17",
          subjects=("settlement",), requires=("fee_lines",))
def rehab_overbilling(ctx: Context) -> pd.DataFrame:
    """Claims billing rehabilitation items more often per day than the catalogue allows.

    Per claim, day and item, quantity above the item's ``max_qty_per_day`` (catalogue; else
    ``default_max_qty_per_day``) is excess, as are items beyond ``max_items_per_day`` distinct
    rehab items a day. Claims with >= ``min_excess_units`` excess units fire. Amount: excess
    units x unit price.
    """
    c = ctx.cfg
    return ctx.df(f"""
    WITH rl AS (
        SELECT l.settlement_id, l.item_code, l.service_time::DATE AS d, l.qty, l.unit_price,
               coalesce(cat.max_qty_per_day, {float(c['default_max_qty_per_day'])}) AS cap
        FROM fee_lines l JOIN catalogue cat USING (item_code)
        WHERE cat.item_class IN {sql_list(c['item_classes'])} AND l.qty > 0),
    di AS (SELECT settlement_id, item_code, d, sum(qty) AS q, any_value(cap) AS cap,
                  avg(unit_price) AS price FROM rl GROUP BY ALL),
    dd AS (SELECT settlement_id, d, count(*) AS items, min(price) AS min_price,
                  sum(greatest(0, q - cap)) AS ex_qty,
                  sum(greatest(0, q - cap) * price) AS ex_amt
           FROM di GROUP BY ALL),
    st AS (SELECT settlement_id, sum(ex_qty) AS ex_qty,
                  sum(greatest(0, items - {int(c['max_items_per_day'])})) AS ex_items,
                  sum(ex_amt + greatest(0, items - {int(c['max_items_per_day'])}) * min_price)
                      AS amt,
                  max(items) AS max_items, count(*) AS rehab_days
           FROM dd GROUP BY 1)
    SELECT 'settlement' AS subject_type, st.settlement_id AS subject_id, s.facility_id,
           strftime(s.admission_time, '%Y-%m') AS period,
           least(1.0, 0.5 * (st.ex_qty + st.ex_items) / {float(c['min_excess_units'])}) AS score,
           st.amt AS amount,
           to_json(struct_pack(person_id := s.person_id, staff_id := s.attending_staff_id,
               excess_units_over_daily_cap := st.ex_qty,
               excess_items_over_daily_limit := st.ex_items,
               max_rehab_items_one_day := st.max_items, rehab_days := st.rehab_days))::VARCHAR
               AS evidence,
           [st.settlement_id] AS settlement_ids
    FROM st JOIN settlements s USING (settlement_id)
    WHERE st.ex_qty + st.ex_items >= {float(c['min_excess_units'])}
    """)


@detector("care_after_death", title="死亡后就医 care after death", model="M20",
          subjects=("person", "staff"))
def care_after_death(ctx: Context) -> pd.DataFrame:
    """Settlements of persons after their death date, and claims written by dead staff.

    A settlement starting more than ``grace_days`` after ``persons.death_date`` (civil-affairs /
    funeral data) is care after death; one lead per person lists them. Settlements whose
    attending doctor died or was deregistered before the visit give one lead per staff member.
    """
    g = int(ctx.cfg["grace_days"])
    n_dead = ctx.con.execute(
        "SELECT (SELECT count(*) FROM persons WHERE death_date IS NOT NULL)"
        " + (SELECT count(*) FROM staff WHERE death_date IS NOT NULL)").fetchone()[0]
    if not n_dead:
        raise SkipDetector("no death dates recorded (persons.death_date, staff.death_date)")
    return ctx.df(f"""
    WITH pa AS (
        SELECT s.person_id, s.settlement_id, s.facility_id, s.fund_paid, s.admission_time,
               p.death_date
        FROM settlements s JOIN persons p USING (person_id)
        WHERE p.death_date IS NOT NULL AND s.admission_time::DATE > p.death_date + {g}),
    sa AS (
        SELECT s.attending_staff_id AS staff_id, s.settlement_id, s.facility_id, s.fund_paid,
               s.admission_time, st.death_date
        FROM settlements s JOIN staff st ON st.staff_id = s.attending_staff_id
        WHERE st.death_date IS NOT NULL AND s.admission_time::DATE > st.death_date + {g})
    SELECT 'person' AS subject_type, person_id AS subject_id, mode(facility_id) AS facility_id,
           strftime(min(admission_time), '%Y-%m') AS period,
           least(1.0, 0.8 + 0.05 * count(*)) AS score, sum(fund_paid) AS amount,
           to_json(struct_pack(death_date := any_value(death_date), settlements := count(*),
               first_after_death := min(admission_time)::DATE,
               facilities := count(DISTINCT facility_id)))::VARCHAR AS evidence,
           {ids('settlement_id', ctx)} AS settlement_ids
    FROM pa GROUP BY person_id
    UNION ALL
    SELECT 'staff', staff_id, mode(facility_id), strftime(min(admission_time), '%Y-%m'),
           least(1.0, 0.8 + 0.05 * count(*)), sum(fund_paid),
           to_json(struct_pack(death_date := any_value(death_date), settlements := count(*),
               first_after_death := min(admission_time)::DATE,
               facilities := count(DISTINCT facility_id)))::VARCHAR,
           {ids('settlement_id', ctx)}
    FROM sa GROUP BY staff_id
    """)
