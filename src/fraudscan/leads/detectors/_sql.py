"""SQL fragments the detectors share (stays, fee mix), so each is written once."""

from __future__ import annotations

from fraudscan.leads.registry import Context, sql_list


def stays_cte(ctx: Context, name: str = "stays") -> str:
    """Inpatient stays with admission/discharge dates and length of stay (>= 1 day)."""
    types = sql_list(ctx.common["inpatient_medical_types"])
    return f"""{name} AS (
        SELECT settlement_id, person_id, facility_id, attending_staff_id, department,
               main_diagnosis, drg_code, planned_readmission, discharge_way,
               admission_time::DATE AS adm, discharge_time::DATE AS dis,
               greatest(1, date_diff('day', admission_time::DATE, discharge_time::DATE)) AS los,
               total_amount, fund_paid, strftime(admission_time, '%Y-%m') AS period
        FROM settlements WHERE medical_type IN {types})"""


def mix_cte(ctx: Context, stays: str = "stays", name: str = "mix") -> str:
    """Fee mix per stay: shares of therapy, exam and hotel (bed/nursing/consultation) fees."""
    c = ctx.common
    therapy, exam, hotel = (sql_list(c[k]) for k in ("therapy_classes", "exam_classes",
                                                      "hotel_classes"))
    return f"""{name} AS (
        SELECT l.settlement_id,
               sum(l.amount) AS line_total,
               coalesce(sum(l.amount) FILTER (WHERE cat.item_class IN {therapy}), 0)
                   AS therapy_amt,
               coalesce(sum(l.amount) FILTER (WHERE cat.item_class IN {exam}), 0)
                   AS exam_amt,
               coalesce(sum(l.amount) FILTER (WHERE cat.item_class IN {hotel}), 0)
                   AS hotel_amt,
               count(DISTINCT l.item_code) FILTER (
                   WHERE cat.item_class IN {therapy}) AS n_therapy_items,
               count(DISTINCT l.item_code) FILTER (WHERE cat.item_class IN {exam}) AS n_exam_items,
               count(DISTINCT l.item_code) AS n_items
        FROM fee_lines l JOIN {stays} s USING (settlement_id)
        LEFT JOIN catalogue cat USING (item_code)
        WHERE l.qty > 0
        GROUP BY l.settlement_id)"""


def ids(col: str, ctx: Context) -> str:
    """Aggregate a capped, sorted, de-duplicated list of settlement ids."""
    return f"list_slice(list_sort(list(DISTINCT {col})), 1, {ctx.cap})"
