"""Drug and pharmacy screening models: M09-M11 and M19 of BRIEF §2.2."""

from __future__ import annotations

import pandas as pd

from fraudscan.leads.detectors._sql import ids
from fraudscan.leads.registry import Context, detector, sql_list


@detector("drug_resale", title="倒卖/回流药 drug resale", model="M09/M10",
          subjects=("person", "facility"), requires=("fee_lines",))
def drug_resale(ctx: Context) -> pd.DataFrame:
    """Boxes sold to a person and sold again elsewhere (trace-code chains), and hoarding.

    With trace scans: scans are ordered per trace code; a later sale in another settlement
    (not a refund of the first) links the earlier buyer to the reselling facility. Persons with
    >= ``min_reappearing_codes`` reappearing boxes and facilities reselling >=
    ``min_resale_facility_codes`` boxes fire. Without trace scans (and with them when
    ``possession_with_trace``): persons
    whose days' supply of one resale-prone drug group within ``possession_window_days`` exceeds
    ``max_possession_ratio`` x the window, bought at >= ``min_facilities`` facilities.
    """
    c = ctx.cfg
    parts: list[pd.DataFrame] = []
    if ctx.has("trace_scans"):
        parts.append(ctx.df(f"""
        WITH sc AS (
            SELECT t.scan_id, t.trace_code, t.facility_id, t.item_code, t.scan_time,
                   l.settlement_id, s.person_id, l.amount / greatest(l.qty, 1) AS box_amount
            FROM trace_scans t JOIN fee_lines l USING (line_id)
            JOIN settlements s USING (settlement_id)
            WHERE l.qty > 0 AND t.trace_code IS NOT NULL),
        refunded AS (SELECT DISTINCT settlement_id, item_code FROM fee_lines WHERE qty < 0),
        seq AS (SELECT *, lag(person_id) OVER w AS prev_person, lag(facility_id) OVER w AS prev_fac,
                       lag(settlement_id) OVER w AS prev_sid, lag(box_amount) OVER w AS prev_amt
                FROM sc WINDOW w AS (PARTITION BY trace_code ORDER BY scan_time, scan_id)),
        links AS (SELECT q.* FROM seq q
                  WHERE q.prev_sid IS NOT NULL AND q.prev_sid <> q.settlement_id
                    AND NOT EXISTS (SELECT 1 FROM refunded r WHERE r.settlement_id = q.prev_sid
                                    AND r.item_code = q.item_code)),
        by_person AS (
            SELECT 'person' AS subject_type, prev_person AS subject_id,
                   mode(prev_fac) AS facility_id, strftime(min(scan_time), '%Y-%m') AS period,
                   least(1.0, 0.6 + 0.1 * count(DISTINCT trace_code)) AS score,
                   sum(prev_amt) AS amount,
                   to_json(struct_pack(signal := 'trace_code_reappearance',
                       reappearing_boxes := count(DISTINCT trace_code),
                       bought_at := list_sort(list(DISTINCT prev_fac)),
                       resold_at := list_sort(list(DISTINCT facility_id))))::VARCHAR AS evidence,
                   list_slice(list_sort(list_distinct(list(prev_sid) || list(settlement_id))),
                              1, {ctx.cap}) AS settlement_ids
            FROM links WHERE prev_person IS NOT NULL GROUP BY prev_person
            HAVING count(DISTINCT trace_code) >= {int(c['min_reappearing_codes'])}),
        by_fac AS (
            SELECT 'facility', facility_id, facility_id, strftime(min(scan_time), '%Y-%m'),
                   least(1.0, 0.5 * count(DISTINCT trace_code)
                         / {int(c['min_resale_facility_codes'])}),
                   sum(box_amount),
                   to_json(struct_pack(signal := 'resold_trace_codes',
                       resold_boxes := count(DISTINCT trace_code),
                       earlier_buyers := count(DISTINCT prev_person),
                       first_sold_at := list_sort(list(DISTINCT prev_fac))))::VARCHAR,
                   {ids('settlement_id', ctx)}
            FROM links GROUP BY facility_id
            HAVING count(DISTINCT trace_code) >= {int(c['min_resale_facility_codes'])})
        SELECT * FROM by_person UNION ALL SELECT * FROM by_fac
        """))
    else:
        ctx.notes.append("trace_scans absent: trace-code chains not used, possession ratio only")
    if ctx.has("trace_scans") and not c["possession_with_trace"]:
        parts = [p for p in parts if not p.empty]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    w = int(c["possession_window_days"])
    prone = "AND coalesce(cat.resale_prone, false)" if c["resale_prone_only"] else ""
    parts.append(ctx.df(f"""
    WITH buys AS (
        SELECT s.person_id, s.settlement_id, s.facility_id, l.service_time::DATE AS d,
               coalesce(cat.drug_group, l.item_code) AS grp, l.days_supply, l.amount
        FROM fee_lines l JOIN settlements s USING (settlement_id)
        JOIN catalogue cat USING (item_code)
        WHERE l.qty > 0 AND l.days_supply > 0
          AND cat.item_class IN {sql_list(['western_drug', 'patent_tcm', 'herbal_piece'])}
          {prone}),
    win AS (
        SELECT a.person_id, a.grp, a.d AS start, sum(b.days_supply) AS supply,
               count(DISTINCT b.facility_id) AS facilities
        FROM buys a JOIN buys b ON a.person_id = b.person_id AND a.grp = b.grp
         AND b.d >= a.d AND b.d < a.d + {w}
        GROUP BY ALL
        HAVING sum(b.days_supply) > {float(c['max_possession_ratio'])} * {w}
           AND count(DISTINCT b.facility_id) >= {int(c['min_facilities'])}),
    mem AS (SELECT DISTINCT b.* FROM win JOIN buys b ON b.person_id = win.person_id
            AND b.grp = win.grp AND b.d >= win.start AND b.d < win.start + {w}),
    best AS (SELECT person_id, max(supply) / {w} AS ratio, max(facilities) AS facilities,
                    min(start) AS start, list_sort(list(DISTINCT grp)) AS groups
             FROM win GROUP BY 1)
    SELECT 'person' AS subject_type, m.person_id AS subject_id,
           mode(m.facility_id) AS facility_id, strftime(any_value(b.start), '%Y-%m') AS period,
           least(1.0, 0.5 * any_value(b.ratio) / {float(c['max_possession_ratio'])}) AS score,
           sum(m.amount) AS amount,
           to_json(struct_pack(signal := 'possession_ratio',
               possession_ratio := round(any_value(b.ratio), 2),
               facilities := any_value(b.facilities), drug_groups := any_value(b.groups),
               window_days := {w}))::VARCHAR AS evidence,
           {ids('m.settlement_id', ctx)} AS settlement_ids
    FROM mem m JOIN best b USING (person_id) GROUP BY m.person_id
    """))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@detector("item_switching", title="串换 item switching (billed vs purchased)", model="M11",
          subjects=("facility",), requires=("stock_movements",))
def item_switching(ctx: Context) -> pd.DataFrame:
    """Facilities selling more of an item than they ever bought (stock reconciliation).

    For each facility reporting stock, and each item of ``stock_classes``, the quantity sold
    (the larger of quantity billed to the fund in fee lines and sales in stock movements) is
    compared with purchases plus returns/adjustments. Items exceeding that by more than
    ``tolerance`` (opening stock, timing) and ``min_excess_qty`` are excess; facilities whose
    excess is worth >= ``min_excess_amount`` fire. With ``require_partner`` an over-sold item
    only counts when cheaper items of the same class were bought but not sold at that facility
    (the real goods behind the switch: purchased/sold above the facility's usual ratio, the
    median over its items, by more than ``tolerance``) and their surplus beyond that usual
    stock build-up covers >= ``min_partner_cover`` of the over-sold quantity; without it any
    stock gap fires (resale and cash-out leave gaps too, but no matching surplus of cheaper
    goods). With ``skip_trace_required`` and trace scans present, items under trace-code
    control are left out: their boxes are reconciled one by one by their codes, and a gap there
    is boxes re-sold from elsewhere (``drug_resale``) or sold unscanned (``card_cashout``).
    Evidence lists both.
    """
    c = ctx.cfg
    classes = sql_list(c["stock_classes"])
    skip_traced = "true" if c["skip_trace_required"] and ctx.has("trace_scans") else "false"
    billed = """
        SELECT s.facility_id, l.item_code, sum(l.qty) AS billed,
               list(DISTINCT l.settlement_id) AS sids, avg(l.unit_price) AS price
        FROM fee_lines l JOIN settlements s USING (settlement_id)
        WHERE s.facility_id IN (SELECT facility_id FROM stock_movements) GROUP BY ALL"""
    if not ctx.has("fee_lines"):
        ctx.notes.append("fee_lines absent: sales taken from stock movements only")
        billed = ("SELECT NULL::VARCHAR AS facility_id, NULL::VARCHAR AS item_code, "
                  "0.0 AS billed, []::VARCHAR[] AS sids, NULL::DOUBLE AS price WHERE false")
    return ctx.df(f"""
    WITH sm AS (
        SELECT facility_id, item_code,
               coalesce(sum(qty) FILTER (WHERE movement_type = 'purchase'), 0) AS purchased,
               coalesce(-sum(qty) FILTER (WHERE movement_type = 'sale'), 0) AS stock_sold,
               coalesce(sum(qty) FILTER (WHERE movement_type IN ('return', 'adjustment')), 0)
                   AS other, avg(unit_price) FILTER (WHERE movement_type = 'purchase') AS buy_price,
               max(movement_time) AS last_t
        FROM stock_movements GROUP BY ALL),
    b AS ({billed}),
    j AS (
        SELECT coalesce(b.facility_id, sm.facility_id) AS facility_id,
               coalesce(b.item_code, sm.item_code) AS item_code,
               coalesce(b.billed, 0) AS billed, coalesce(sm.stock_sold, 0) AS stock_sold,
               coalesce(sm.purchased, 0) AS purchased, coalesce(sm.other, 0) AS other,
               coalesce(b.price, cat.unit_price) AS price, b.sids, sm.last_t
        FROM b FULL JOIN sm USING (facility_id, item_code)
        JOIN catalogue cat ON cat.item_code = coalesce(b.item_code, sm.item_code)
        WHERE cat.item_class IN {classes} AND NOT ({skip_traced} AND coalesce(cat.trace_required,
                                                                            false))),
    x AS (SELECT *, greatest(billed, stock_sold) AS sold,
                 purchased + greatest(other, 0) AS available FROM j),
    over AS (SELECT *, sold - available AS excess FROM x
             WHERE sold > (1 + {float(c['tolerance'])}) * available
               AND sold - available >= {float(c['min_excess_qty'])}),
    under AS (SELECT facility_id, list(struct_pack(item_code := item_code,
                     purchased := purchased, sold := sold) ORDER BY purchased - sold DESC)
                     AS unsold
              FROM x WHERE available > (1 + {float(c['tolerance'])}) * sold
                AND available - sold >= {float(c['min_excess_qty'])} GROUP BY 1),
    usual AS (SELECT facility_id, greatest(median(available / sold), 1.0) AS ratio FROM x
              WHERE sold >= {float(c['min_excess_qty'])} AND available > 0 GROUP BY 1),
    partner AS (
        SELECT o.facility_id, o.item_code,
               coalesce(sum(greatest(u.available - coalesce(us.ratio, 1.0) * u.sold, 0)), 0)
                   AS cover,
               count(u.item_code) AS partners
        FROM over o JOIN catalogue co ON co.item_code = o.item_code
        LEFT JOIN usual us ON us.facility_id = o.facility_id
        LEFT JOIN (x u JOIN catalogue cu ON cu.item_code = u.item_code)
          ON u.facility_id = o.facility_id AND cu.item_class = co.item_class
         AND u.item_code <> o.item_code AND u.price < o.price
         AND u.available > (coalesce(us.ratio, 1.0) + {float(c['tolerance'])}) * u.sold
         AND u.available - u.sold >= {float(c['min_excess_qty'])}
        GROUP BY 1, 2),
    over_p AS (SELECT o.*, pa.cover FROM over o JOIN partner pa USING (facility_id, item_code)
               WHERE NOT {str(bool(c['require_partner'])).lower()}
                  OR (pa.partners > 0
                      AND pa.cover >= {float(c['min_partner_cover'])} * o.excess)),
    fac AS (SELECT facility_id, sum(excess * price) AS amt, count(*) AS n_items,
                   list(struct_pack(item_code := item_code, sold := sold,
                        purchased := purchased, excess := excess,
                        partner_surplus := round(cover, 1)) ORDER BY excess * price DESC)
                       AS oversold,
                   list_slice(list_sort(list_distinct(flatten(list(coalesce(sids, []))))),
                              1, {ctx.cap}) AS settlement_ids,
                   strftime(max(last_t), '%Y') AS period
            FROM over_p GROUP BY 1
            HAVING sum(excess * price) >= {float(c['min_excess_amount'])})
    SELECT 'facility' AS subject_type, f.facility_id AS subject_id, f.facility_id,
           coalesce(f.period, '') AS period,
           least(1.0, 0.5 * f.amt / {float(c["min_excess_amount"])}) AS score,
           f.amt AS amount,
           to_json(struct_pack(oversold_items := f.n_items,
               oversold := list_slice(f.oversold, 1, 10),
               bought_not_sold := list_slice(coalesce(u.unsold, []), 1, 10)))::VARCHAR AS evidence,
           f.settlement_ids
    FROM fac f LEFT JOIN under u USING (facility_id)
    """)


@detector("card_cashout", title="套现 card cash-out at pharmacies", model="M19",
          subjects=("person", "facility"))
def card_cashout(ctx: Context) -> pd.DataFrame:
    """Cards swiped for large round sums at pharmacies, and pharmacies where that clusters.

    A pharmacy settlement (pharmacy facility or med_type 41) is *round* when its total is a
    multiple of ``round_unit`` and at least ``min_round_amount`` (real baskets rarely are).
    Persons with >= ``min_person_round`` round purchases in a year fire (cards collected and
    swiped, 敛卡套刷); pharmacies fire per year when they have >= ``min_round_settlements``
    round sales and a round share >= ``min_lift`` x the median pharmacy's, or, with fee lines
    and trace scans, when >= ``min_no_trace_share`` of sales of trace-required drugs carry no
    scan (goods never left the shelf).
    """
    c = ctx.cfg
    unit, least_amt = float(c["round_unit"]), float(c["min_round_amount"])
    pharm = sql_list(ctx.common["pharmacy_facility_types"])
    if ctx.has("fee_lines") and ctx.has("trace_scans"):
        trace = """
        SELECT l.settlement_id, bool_or(cat.trace_required) AS needs_trace,
               bool_or(cat.trace_required AND sc.line_id IS NULL) AS unscanned
        FROM fee_lines l JOIN catalogue cat USING (item_code)
        LEFT JOIN (SELECT DISTINCT line_id FROM trace_scans) sc USING (line_id)
        WHERE l.qty > 0 AND l.settlement_id IN (SELECT settlement_id FROM ph) GROUP BY 1"""
    else:
        ctx.notes.append("fee_lines or trace_scans absent: unscanned-box signal not used")
        trace = ("SELECT NULL::VARCHAR AS settlement_id, false AS needs_trace, "
                 "false AS unscanned WHERE false")
    return ctx.df(f"""
    WITH ph AS (
        SELECT s.settlement_id, s.person_id, s.facility_id, s.total_amount, s.fund_paid,
               s.account_paid, strftime(s.settle_time, '%Y') AS year,
               s.total_amount >= {least_amt} AND abs(s.total_amount / {unit}
                   - round(s.total_amount / {unit})) < 1e-6 AS is_round
        FROM settlements s JOIN facilities f USING (facility_id)
        WHERE f.facility_type IN {pharm} OR s.medical_type = '41'),
    tr AS ({trace}),
    j AS (SELECT ph.*, coalesce(tr.needs_trace, false) AS needs_trace,
                 coalesce(tr.unscanned, false) AS unscanned
          FROM ph LEFT JOIN tr USING (settlement_id)),
    fy AS (
        SELECT facility_id, year, count(*) AS n, count(*) FILTER (WHERE is_round) AS n_round,
               avg(CASE WHEN is_round THEN 1.0 ELSE 0.0 END) AS round_share,
               count(*) FILTER (WHERE needs_trace) AS n_trace,
               avg(CASE WHEN unscanned THEN 1.0 ELSE 0.0 END) FILTER (WHERE needs_trace)
                   AS no_trace_share,
               count(DISTINCT person_id) FILTER (WHERE is_round) AS round_persons,
               sum(fund_paid + account_paid) FILTER (WHERE is_round OR unscanned) AS amt,
               list_slice(list_sort(list(settlement_id) FILTER (WHERE is_round OR unscanned)),
                          1, {ctx.cap}) AS settlement_ids
        FROM j GROUP BY ALL),
    peer AS (SELECT year, median(round_share) AS med FROM fy GROUP BY 1),
    fac AS (
        SELECT 'facility' AS subject_type, fy.facility_id AS subject_id, fy.facility_id,
               fy.year AS period,
               least(1.0, greatest(
                   0.5 * fy.round_share / greatest(p.med, 1e-9) / {float(c['min_lift'])},
                   0.5 * coalesce(fy.no_trace_share, 0) / {float(c['min_no_trace_share'])}))
                   AS score,
               coalesce(fy.amt, 0) AS amount,
               to_json(struct_pack(signal := 'pharmacy', settlements := fy.n,
                   round_settlements := fy.n_round, round_persons := fy.round_persons,
                   round_share := round(fy.round_share, 4),
                   peer_median_round_share := round(p.med, 4),
                   trace_required_sales := fy.n_trace,
                   unscanned_share := round(fy.no_trace_share, 3)))::VARCHAR AS evidence,
               fy.settlement_ids
        FROM fy JOIN peer p USING (year)
        WHERE (fy.n_round >= {int(c['min_round_settlements'])}
               AND fy.round_share >= {float(c['min_lift'])} * p.med)
           OR (fy.n_trace >= {int(c['min_round_settlements'])}
               AND coalesce(fy.no_trace_share, 0) >= {float(c['min_no_trace_share'])})),
    per AS (
        SELECT 'person' AS subject_type, person_id AS subject_id,
               mode(facility_id) AS facility_id, year AS period,
               least(1.0, 0.5 * count(*) / {int(c['min_person_round'])}) AS score,
               sum(fund_paid + account_paid) AS amount,
               to_json(struct_pack(signal := 'person', round_purchases := count(*),
                   pharmacies := count(DISTINCT facility_id),
                   total := round(sum(total_amount), 2)))::VARCHAR AS evidence,
               {ids('settlement_id', ctx)} AS settlement_ids
        FROM j WHERE is_round GROUP BY person_id, year
        HAVING count(*) >= {int(c['min_person_round'])})
    SELECT * FROM fac UNION ALL SELECT * FROM per
    """)
