-- model: feat_claim
-- subject: claim
-- key: settlement_id
-- doc: Claim / stay features (BRIEF §2.4): fee mix, intensity, idle days, cost and length against peers, previous stay, rule findings, template similarity.
-- peers: period, medical_type, dx_group, facility_level
-- percentile: fund_share, self_pay_share, share_drug, share_lab, share_imaging, share_consumable, share_bed, items_per_day, los_peer_ratio, cost_peer_ratio, max_jaccard
-- column settlement_id: Settlement id (结算ID).
-- column period: Month of settlement (YYYY-MM); the partition key of incremental builds.
-- column person_id: Insured person of the claim.
-- column facility_id: Facility that settled the claim.
-- column staff_id: Attending doctor.
-- column medical_type: Medical type (med_type) of the claim; part of the peer group.
-- column dx_group: Diagnosis group for peers: DRG/DIP code, else the 3-character main diagnosis.
-- column facility_level: Facility level (0 when unknown); part of the peer group.
-- column is_inpatient: True for inpatient stays (med_type 21 or 52).
-- column total_amount: Total medical cost of the claim (CNY).
-- column fund_paid: Fund payment of the claim (CNY).
-- column fund_share: Fund payment ÷ total cost.
-- column self_pay_share: Full self-pay amount ÷ total cost.
-- column n_lines: Fee lines of the claim (null without fee lines).
-- column n_items: Distinct catalogue items on the claim (null without fee lines).
-- column share_western_drug: Western-drug line amount ÷ line total (null without fee lines or catalogue).
-- column share_patent_tcm: Chinese patent medicine amount ÷ line total.
-- column share_herbal_piece: Herbal-piece amount ÷ line total.
-- column share_drug: All drug classes ÷ line total.
-- column share_bed: Bed fees ÷ line total.
-- column share_nursing: Nursing fees ÷ line total.
-- column share_consultation: Consultation fees ÷ line total.
-- column share_lab: Laboratory tests ÷ line total.
-- column share_imaging: Imaging ÷ line total.
-- column share_treatment: Treatment ÷ line total.
-- column share_surgery: Surgery ÷ line total.
-- column share_rehabilitation: Rehabilitation ÷ line total.
-- column share_dialysis: Dialysis ÷ line total.
-- column share_consumable: Consumables ÷ line total.
-- column share_other: Other fees ÷ line total.
-- column items_per_day: Fee lines per day of care (length of stay for stays, 1 day for visits).
-- column idle_days: Days of a stay whose only lines are bed, nursing or consultation (M02; null without fee lines).
-- column max_idle_run: Longest run of consecutive idle days in the stay.
-- column los_days: Length of stay in days (discharge − admission, at least 1; stays only).
-- column los_peer_median: Median length of stay of peer stays (same month, dx group, facility level).
-- column los_peer_ratio: Length of stay ÷ peer median.
-- column cost_peer_median: Median total cost of peer claims (same month, medical type, dx group, facility level).
-- column cost_peer_ratio: Total cost ÷ peer median.
-- column days_since_prev_stay: Days from the person's previous discharge to this admission (previous stay within 365 days; M03).
-- column prev_stay_same_dx: Previous stay (within 365 days) had the same diagnosis group.
-- column readmit_31d: Unplanned readmission at the same facility within 31 days of the previous discharge.
-- column n_findings: Rule findings on the claim (0 when the rule engine has not run).
-- column findings_amount: Amount flagged by rule findings (CNY).
-- column n_rules: Distinct rules that fired on the claim.
-- column max_jaccard: Max Jaccard similarity of the stay's item set to another person's stay at the facility that month (M06; stays with fee lines only).
WITH peer_los AS (
    SELECT period, dx_group, facility_level, median(los_days) AS los_peer_median
    FROM stg_settlements
    WHERE is_inpatient
    GROUP BY period, dx_group, facility_level
),

peer_cost AS (
    SELECT period, medical_type, dx_group, facility_level,
        median(total_amount) AS cost_peer_median
    FROM stg_settlements
    GROUP BY period, medical_type, dx_group, facility_level
)

SELECT
    s.settlement_id,
    s.period,
    s.person_id,
    s.facility_id,
    s.attending_staff_id AS staff_id,
    s.medical_type,
    s.dx_group,
    s.facility_level,
    s.is_inpatient,
    s.total_amount,
    s.fund_paid,
    s.fund_paid / nullif(s.total_amount, 0) AS fund_share,
    s.full_self_pay / nullif(s.total_amount, 0) AS self_pay_share,
    CASE WHEN m.has_fee_lines THEN coalesce(l.n_lines, 0) END AS n_lines,
    CASE WHEN m.has_fee_lines THEN coalesce(l.n_items, 0) END AS n_items,
    CASE WHEN m.has_catalogue THEN l.amt_western_drug / nullif(l.line_amount, 0) END
        AS share_western_drug,
    CASE WHEN m.has_catalogue THEN l.amt_patent_tcm / nullif(l.line_amount, 0) END
        AS share_patent_tcm,
    CASE WHEN m.has_catalogue THEN l.amt_herbal_piece / nullif(l.line_amount, 0) END
        AS share_herbal_piece,
    CASE WHEN m.has_catalogue THEN l.amt_drug / nullif(l.line_amount, 0) END AS share_drug,
    CASE WHEN m.has_catalogue THEN l.amt_bed / nullif(l.line_amount, 0) END AS share_bed,
    CASE WHEN m.has_catalogue THEN l.amt_nursing / nullif(l.line_amount, 0) END
        AS share_nursing,
    CASE WHEN m.has_catalogue THEN l.amt_consultation / nullif(l.line_amount, 0) END
        AS share_consultation,
    CASE WHEN m.has_catalogue THEN l.amt_lab / nullif(l.line_amount, 0) END AS share_lab,
    CASE WHEN m.has_catalogue THEN l.amt_imaging / nullif(l.line_amount, 0) END
        AS share_imaging,
    CASE WHEN m.has_catalogue THEN l.amt_treatment / nullif(l.line_amount, 0) END
        AS share_treatment,
    CASE WHEN m.has_catalogue THEN l.amt_surgery / nullif(l.line_amount, 0) END
        AS share_surgery,
    CASE WHEN m.has_catalogue THEN l.amt_rehabilitation / nullif(l.line_amount, 0) END
        AS share_rehabilitation,
    CASE WHEN m.has_catalogue THEN l.amt_dialysis / nullif(l.line_amount, 0) END
        AS share_dialysis,
    CASE WHEN m.has_catalogue THEN l.amt_consumable / nullif(l.line_amount, 0) END
        AS share_consumable,
    CASE WHEN m.has_catalogue THEN l.amt_other / nullif(l.line_amount, 0) END AS share_other,
    CASE WHEN m.has_fee_lines
        THEN CAST(coalesce(l.n_lines, 0) AS DOUBLE) / coalesce(s.los_days, 1)
    END AS items_per_day,
    CASE WHEN m.has_fee_lines AND m.has_catalogue AND s.is_inpatient
        THEN coalesce(l.idle_days, 0) END AS idle_days,
    CASE WHEN m.has_fee_lines AND m.has_catalogue AND s.is_inpatient
        THEN coalesce(l.max_idle_run, 0) END AS max_idle_run,
    s.los_days,
    CAST(pl.los_peer_median AS DOUBLE) AS los_peer_median,
    s.los_days / nullif(CAST(pl.los_peer_median AS DOUBLE), 0) AS los_peer_ratio,
    CAST(pc.cost_peer_median AS DOUBLE) AS cost_peer_median,
    s.total_amount / nullif(CAST(pc.cost_peer_median AS DOUBLE), 0) AS cost_peer_ratio,
    s.days_since_prev_stay,
    s.prev_stay_same_dx,
    CASE WHEN s.is_inpatient THEN s.readmit_31d END AS readmit_31d,
    coalesce(r.n_findings, 0) AS n_findings,
    coalesce(r.findings_amount, 0.0) AS findings_amount,
    coalesce(r.n_rules, 0) AS n_rules,
    CASE WHEN m.has_fee_lines AND s.is_inpatient THEN coalesce(j.max_jaccard, 0.0) END
        AS max_jaccard
FROM stg_settlements s
CROSS JOIN fs_meta m
LEFT JOIN stg_claim_lines l ON l.settlement_id = s.settlement_id
LEFT JOIN peer_los pl
    ON pl.period = s.period AND coalesce(pl.dx_group, '') = coalesce(s.dx_group, '')
    AND pl.facility_level = s.facility_level AND s.is_inpatient
LEFT JOIN peer_cost pc
    ON pc.period = s.period AND pc.medical_type = s.medical_type
    AND coalesce(pc.dx_group, '') = coalesce(s.dx_group, '')
    AND pc.facility_level = s.facility_level
LEFT JOIN stg_rule_hits r ON r.settlement_id = s.settlement_id
LEFT JOIN stg_similarity j ON j.settlement_id = s.settlement_id
