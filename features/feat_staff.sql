-- model: feat_staff
-- subject: staff
-- key: staff_id
-- doc: Doctor / pharmacist features per month (BRIEF §2.4): patients, fund per patient, findings per 100 orders, item-list similarity across own patients, restricted-drug share.
-- peers: period, department
-- percentile: fund_per_patient, findings_per_100_orders, item_similarity, restricted_drug_share
-- column staff_id: National doctor / pharmacist code.
-- column period: Month (YYYY-MM).
-- column facility_id: Main practice facility (staff registry).
-- column department: Department (staff registry); the peer group.
-- column role: doctor, pharmacist, nurse or technician.
-- column n_settlements: Settlements with this attending doctor.
-- column n_patients: Distinct patients as attending doctor.
-- column fund_paid: Fund payment of the attended settlements (CNY).
-- column fund_per_patient: Fund payment ÷ distinct patients.
-- column n_orders: Fee lines ordered (null without fee lines).
-- column n_findings: Rule findings naming this staff member.
-- column findings_per_100_orders: Rule findings per 100 ordered fee lines (null without fee lines).
-- column item_similarity: Mean over the attended stays of the max Jaccard similarity to another patient's stay with the same doctor.
-- column restricted_drug_share: Ordered drug lines on items with indications or payment limits ÷ ordered drug lines.
WITH attended AS (
    SELECT
        attending_staff_id AS staff_id,
        period,
        CAST(count(*) AS BIGINT) AS n_settlements,
        CAST(count(DISTINCT person_id) AS BIGINT) AS n_patients,
        sum(fund_paid) AS fund_paid
    FROM stg_settlements
    WHERE attending_staff_id IS NOT NULL
    GROUP BY attending_staff_id, period
),

sim_staff AS (
    SELECT s.attending_staff_id AS staff_id, s.period, avg(j.max_jaccard_same_staff) AS sim
    FROM stg_similarity j
    JOIN stg_settlements s ON s.settlement_id = j.settlement_id
    WHERE s.attending_staff_id IS NOT NULL
    GROUP BY s.attending_staff_id, s.period
),

orders AS (
    SELECT
        l.staff_id,
        s.period,
        CAST(count(*) AS BIGINT) AS n_orders,
        sum(CASE WHEN c.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
            THEN 1 ELSE 0 END) AS n_drug,
        sum(CASE WHEN c.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
            AND (c.indications IS NOT NULL OR c.restriction_text IS NOT NULL)
            THEN 1 ELSE 0 END) AS n_restricted
    FROM fee_lines l
    JOIN stg_settlements s ON s.settlement_id = l.settlement_id
    LEFT JOIN catalogue c ON c.item_code = l.item_code
    WHERE l.staff_id IS NOT NULL
    GROUP BY l.staff_id, s.period
),

hits AS (
    SELECT r.staff_id, s.period, CAST(count(*) AS BIGINT) AS n_findings
    FROM rule_findings r
    JOIN stg_settlements s ON s.settlement_id = r.settlement_id
    WHERE r.staff_id IS NOT NULL
    GROUP BY r.staff_id, s.period
),

keys AS (
    SELECT staff_id, period FROM attended
    UNION
    SELECT staff_id, period FROM orders
)

SELECT
    k.staff_id,
    k.period,
    st.facility_id,
    st.department,
    st.role,
    CAST(coalesce(a.n_settlements, 0) AS BIGINT) AS n_settlements,
    CAST(coalesce(a.n_patients, 0) AS BIGINT) AS n_patients,
    coalesce(a.fund_paid, 0.0) AS fund_paid,
    a.fund_paid / nullif(a.n_patients, 0) AS fund_per_patient,
    CASE WHEN m.has_fee_lines THEN coalesce(o.n_orders, 0) END AS n_orders,
    CAST(coalesce(h.n_findings, 0) AS BIGINT) AS n_findings,
    CASE WHEN m.has_fee_lines
        THEN CAST(100 * coalesce(h.n_findings, 0) AS DOUBLE) / nullif(o.n_orders, 0)
    END AS findings_per_100_orders,
    sm.sim AS item_similarity,
    CASE WHEN m.has_catalogue THEN CAST(o.n_restricted AS DOUBLE) / nullif(o.n_drug, 0) END
        AS restricted_drug_share
FROM keys k
CROSS JOIN fs_meta m
LEFT JOIN staff st ON st.staff_id = k.staff_id
LEFT JOIN attended a ON a.staff_id = k.staff_id AND a.period = k.period
LEFT JOIN orders o ON o.staff_id = k.staff_id AND o.period = k.period
LEFT JOIN hits h ON h.staff_id = k.staff_id AND h.period = k.period
LEFT JOIN sim_staff sm ON sm.staff_id = k.staff_id AND sm.period = k.period
