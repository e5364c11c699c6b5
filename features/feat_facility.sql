-- model: feat_facility
-- subject: facility
-- key: facility_id
-- doc: Facility profile per month (BRIEF §3.2 and §2.4): stays, occupancy, costs and their growth, fee mix, transfers and readmissions, rule findings, trace codes, bursts, patient mix.
-- peers: period, facility_type, facility_level, district
-- percentile: avg_los, bed_occupancy, cost_per_visit, cost_per_visit_growth, fund_share, self_pay_share, drug_share, test_share, consumable_share, transfer_rate, readmission_31d_rate, findings_per_100, findings_amount_share, trace_coverage, elderly_share, out_of_area_share, settlements_growth, fund_growth
-- column facility_id: Facility code (定点医药机构编号).
-- column period: Month (YYYY-MM).
-- column facility_type: Kind of institution; part of the peer group.
-- column facility_level: Hospital level (0 when unknown); part of the peer group.
-- column district: Supervision district; part of the peer group.
-- column n_settlements: Settlements in the month.
-- column n_persons: Distinct insured persons settled.
-- column n_stays: Inpatient stays settled.
-- column avg_los: Average length of stay of stays settled in the month (days).
-- column bed_days: Stay days of the stays settled in the month.
-- column bed_occupancy: Bed days ÷ (approved beds × days in month); above 1 is a red flag (null without beds).
-- column total_amount: Total medical cost (CNY).
-- column fund_paid: Fund payment (CNY).
-- column cost_per_visit: Average total cost per settlement.
-- column cost_per_visit_growth: Cost per visit ÷ last month's − 1 (null when last month had none).
-- column fund_share: Fund payment ÷ total cost.
-- column self_pay_share: Full self-pay ÷ total cost.
-- column drug_share: Drug line amount ÷ line total (null without fee lines).
-- column test_share: Laboratory and imaging ÷ line total.
-- column consumable_share: Consumables ÷ line total.
-- column transfer_rate: Stays discharged by transfer (discharge way 2 or 3) ÷ stays.
-- column readmission_31d_rate: Unplanned readmissions within 31 days of a discharge from the same facility ÷ stays.
-- column n_findings: Rule findings on the month's settlements.
-- column findings_per_100: Rule findings per 100 settlements.
-- column findings_amount: Amount flagged by rule findings (CNY).
-- column findings_amount_share: Flagged amount ÷ fund payment.
-- column trace_coverage: Drug lines with at least one trace-code scan ÷ drug lines (null without trace scans or fee lines).
-- column trace_duplicates: Scans of a trace code already scanned anywhere in the previous 365 days (null without trace scans).
-- column max_settlements_10min: Most settlements in any 10-minute window ending in the month (M15 bursts).
-- column elderly_share: Settlements of persons aged 65 or more ÷ settlements.
-- column out_of_area_share: Settlements outside the insured area ÷ settlements.
-- column settlements_growth: Settlements ÷ last month's − 1.
-- column fund_growth: Fund payment ÷ last month's − 1.
WITH base AS (
    SELECT
        facility_id,
        period,
        CAST(count(*) AS BIGINT) AS n_settlements,
        CAST(count(DISTINCT person_id) AS BIGINT) AS n_persons,
        CAST(sum(CASE WHEN is_inpatient THEN 1 ELSE 0 END) AS BIGINT) AS n_stays,
        avg(CAST(los_days AS DOUBLE)) AS avg_los,
        CAST(coalesce(sum(los_days), 0) AS BIGINT) AS bed_days,
        sum(total_amount) AS total_amount,
        sum(fund_paid) AS fund_paid,
        sum(full_self_pay) AS full_self_pay,
        sum(CASE WHEN is_inpatient AND discharge_way IN ('2', '3') THEN 1 ELSE 0 END)
            AS n_transfers,
        sum(CASE WHEN is_inpatient AND readmit_31d THEN 1 ELSE 0 END) AS n_readmit,
        avg(CASE WHEN age_years IS NOT NULL THEN
            CASE WHEN age_years >= 65 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END END) AS elderly_share,
        avg(CASE WHEN out_of_area THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS out_of_area_share
    FROM stg_settlements
    GROUP BY facility_id, period
),

scanned AS (
    SELECT DISTINCT line_id FROM trace_scans
),

fee AS (
    -- one pass over the fee lines for the fee mix and trace coverage (and no dependency on
    -- stg_claim_lines, which a facility-only build then never computes)
    SELECT
        s.facility_id,
        s.period,
        sum(CAST(l.amount AS DOUBLE)) AS line_amount,
        sum(CASE WHEN c.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
            THEN CAST(l.amount AS DOUBLE) ELSE 0 END) AS amt_drug,
        sum(CASE WHEN c.item_class IN ('lab', 'imaging')
            THEN CAST(l.amount AS DOUBLE) ELSE 0 END) AS amt_test,
        sum(CASE WHEN c.item_class = 'consumable'
            THEN CAST(l.amount AS DOUBLE) ELSE 0 END) AS amt_consumable,
        sum(CASE WHEN c.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
            AND l.qty > 0 THEN 1 ELSE 0 END) AS n_drug_lines,
        sum(CASE WHEN c.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
            AND l.qty > 0 AND sc.line_id IS NOT NULL THEN 1 ELSE 0 END) AS n_scanned
    FROM fee_lines l
    JOIN stg_settlements s ON s.settlement_id = l.settlement_id
    LEFT JOIN catalogue c ON c.item_code = l.item_code
    LEFT JOIN scanned sc ON sc.line_id = l.line_id
    GROUP BY s.facility_id, s.period
),

mix AS (
    SELECT facility_id, period, line_amount, amt_drug, amt_test, amt_consumable FROM fee
),

coverage AS (
    SELECT
        facility_id,
        period,
        CAST(n_scanned AS DOUBLE) / n_drug_lines AS trace_coverage
    FROM fee
    WHERE n_drug_lines > 0
),

hits AS (
    SELECT
        s.facility_id,
        s.period,
        sum(r.n_findings) AS n_findings,
        sum(r.findings_amount) AS findings_amount
    FROM stg_rule_hits r
    JOIN stg_settlements s ON s.settlement_id = r.settlement_id
    GROUP BY s.facility_id, s.period
),

scans AS (
    SELECT
        facility_id,
        strftime(scan_time, '%Y-%m') AS period,
        CAST(scan_time AS DATE) AS scan_day,
        lag(CAST(scan_time AS DATE)) OVER (
            PARTITION BY trace_code ORDER BY scan_time, scan_id) AS prev_scan_day
    FROM trace_scans
),

dups AS (
    SELECT
        facility_id,
        period,
        CAST(sum(CASE WHEN date_diff('day', prev_scan_day, scan_day) <= 365 THEN 1 ELSE 0 END)
            AS BIGINT) AS trace_duplicates
    FROM scans
    GROUP BY facility_id, period
),

bursts AS (
    SELECT facility_id, period, CAST(max(n_10min) AS BIGINT) AS max_settlements_10min
    FROM (
        SELECT
            facility_id,
            period,
            count(*) OVER (
                PARTITION BY facility_id ORDER BY CAST(epoch(settle_time) AS BIGINT)
                RANGE BETWEEN 599 PRECEDING AND CURRENT ROW) AS n_10min
        FROM stg_settlements
    ) w
    GROUP BY facility_id, period
)

SELECT
    b.facility_id,
    b.period,
    f.facility_type,
    CAST(coalesce(f.level, 0) AS BIGINT) AS facility_level,
    f.district,
    b.n_settlements,
    b.n_persons,
    b.n_stays,
    b.avg_los,
    b.bed_days,
    CAST(b.bed_days AS DOUBLE) / nullif(f.beds * mo.days_in_month, 0) AS bed_occupancy,
    b.total_amount,
    b.fund_paid,
    b.total_amount / b.n_settlements AS cost_per_visit,
    (b.total_amount / b.n_settlements) / nullif(p.total_amount / p.n_settlements, 0) - 1
        AS cost_per_visit_growth,
    b.fund_paid / nullif(b.total_amount, 0) AS fund_share,
    b.full_self_pay / nullif(b.total_amount, 0) AS self_pay_share,
    CASE WHEN m.has_catalogue THEN x.amt_drug / nullif(x.line_amount, 0) END AS drug_share,
    CASE WHEN m.has_catalogue THEN x.amt_test / nullif(x.line_amount, 0) END AS test_share,
    CASE WHEN m.has_catalogue THEN x.amt_consumable / nullif(x.line_amount, 0) END
        AS consumable_share,
    CAST(b.n_transfers AS DOUBLE) / nullif(b.n_stays, 0) AS transfer_rate,
    CAST(b.n_readmit AS DOUBLE) / nullif(b.n_stays, 0) AS readmission_31d_rate,
    CAST(coalesce(h.n_findings, 0) AS BIGINT) AS n_findings,
    CAST(100 * coalesce(h.n_findings, 0) AS DOUBLE) / b.n_settlements AS findings_per_100,
    coalesce(h.findings_amount, 0.0) AS findings_amount,
    coalesce(h.findings_amount, 0.0) / nullif(b.fund_paid, 0) AS findings_amount_share,
    CASE WHEN m.has_trace_scans AND m.has_fee_lines THEN cv.trace_coverage END
        AS trace_coverage,
    CASE WHEN m.has_trace_scans THEN coalesce(d.trace_duplicates, 0) END AS trace_duplicates,
    bu.max_settlements_10min,
    b.elderly_share,
    b.out_of_area_share,
    CAST(b.n_settlements AS DOUBLE) / nullif(p.n_settlements, 0) - 1 AS settlements_growth,
    b.fund_paid / nullif(p.fund_paid, 0) - 1 AS fund_growth
FROM base b
CROSS JOIN fs_meta m
JOIN fs_months mo ON mo.period = b.period
LEFT JOIN facilities f ON f.facility_id = b.facility_id
LEFT JOIN base p ON p.facility_id = b.facility_id AND p.period = mo.prev_period
LEFT JOIN mix x ON x.facility_id = b.facility_id AND x.period = b.period
LEFT JOIN hits h ON h.facility_id = b.facility_id AND h.period = b.period
LEFT JOIN coverage cv ON cv.facility_id = b.facility_id AND cv.period = b.period
LEFT JOIN dups d ON d.facility_id = b.facility_id AND d.period = b.period
LEFT JOIN bursts bu ON bu.facility_id = b.facility_id AND bu.period = b.period
