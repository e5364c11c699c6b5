-- model: feat_person
-- subject: person
-- key: person_id
-- doc: Insured-person features per month of activity (BRIEF §2.4): utilisation over trailing 30/90/365 days, days'-supply possession, resale-prone and patent-medicine spend, co-visits.
-- peers: period, insurance_type
-- percentile: possession_ratio_90d, resale_drug_share, patent_tcm_share
-- column person_id: Person number (人员编号).
-- column period: Month with at least one settlement (YYYY-MM); windows end on its last day.
-- column insurance_type: Insurance type (persons registry); the peer group.
-- column sex: Sex (1 male, 2 female, 9 unknown).
-- column age_years: Age in whole years at the end of the month.
-- column visits_30d: Settlements in the 30 days to month end.
-- column visits_90d: Settlements in the 90 days to month end.
-- column visits_365d: Settlements in the 365 days to month end.
-- column facilities_30d: Distinct facilities visited in the 30 days to month end.
-- column facilities_90d: Distinct facilities in the 90 days to month end.
-- column facilities_365d: Distinct facilities in the 365 days to month end.
-- column pharmacies_30d: Distinct pharmacies used in the 30 days to month end.
-- column pharmacies_90d: Distinct pharmacies in the 90 days to month end.
-- column pharmacies_365d: Distinct pharmacies in the 365 days to month end.
-- column fund_365d: Fund payment in the 365 days to month end (CNY).
-- column possession_ratio_90d: Days' supply of drugs dispensed in the 90 days to month end ÷ 90 (above 1 = stockpiling; null without fee lines).
-- column drug_amount: Drug line amount in the month (CNY; null without fee lines).
-- column resale_drug_share: Resale-prone drug amount ÷ drug amount in the month.
-- column patent_tcm_amount: Chinese patent medicine (patent_tcm) amount in the month (CNY).
-- column patent_tcm_share: Chinese patent medicine ÷ line total in the month.
-- column covisit_max_days: Most distinct days in the month this person visited the same facility on the same day as any one other person (facility-days with at most 10 persons: small clinics and pharmacies, where repeated co-visits mean something).
-- column covisit_partners: Other persons met that way on two or more days in the month.
WITH pm AS (
    SELECT DISTINCT s.person_id, s.period, mo.month_end
    FROM stg_settlements s
    JOIN fs_months mo ON mo.period = s.period
),

hist AS (
    SELECT
        pm.person_id,
        pm.period,
        h.settlement_id,
        h.facility_id,
        h.at_pharmacy,
        h.fund_paid,
        date_diff('day', h.settle_day, pm.month_end) AS age_days
    FROM pm
    JOIN stg_settlements h ON h.person_id = pm.person_id
    WHERE date_diff('day', h.settle_day, pm.month_end) BETWEEN 0 AND 364
),

per_facility AS (
    -- one row per person, month and facility first: the windows below then count rows instead
    -- of distinct values (a settlement is in a person-month's history at most once)
    SELECT
        person_id,
        period,
        facility_id,
        sum(CASE WHEN age_days < 30 THEN 1 ELSE 0 END) AS n_30d,
        sum(CASE WHEN age_days < 90 THEN 1 ELSE 0 END) AS n_90d,
        count(*) AS n_365d,
        min(age_days) AS min_age,
        min(CASE WHEN at_pharmacy THEN age_days END) AS min_age_pharmacy,
        sum(fund_paid) AS fund_paid
    FROM hist
    GROUP BY person_id, period, facility_id
),

usage AS (
    SELECT
        person_id,
        period,
        CAST(sum(n_30d) AS BIGINT) AS visits_30d,
        CAST(sum(n_90d) AS BIGINT) AS visits_90d,
        CAST(sum(n_365d) AS BIGINT) AS visits_365d,
        CAST(sum(CASE WHEN facility_id IS NOT NULL AND min_age < 30 THEN 1 ELSE 0 END)
            AS BIGINT) AS facilities_30d,
        CAST(sum(CASE WHEN facility_id IS NOT NULL AND min_age < 90 THEN 1 ELSE 0 END)
            AS BIGINT) AS facilities_90d,
        CAST(sum(CASE WHEN facility_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT)
            AS facilities_365d,
        CAST(sum(CASE WHEN facility_id IS NOT NULL AND min_age_pharmacy < 30 THEN 1 ELSE 0 END)
            AS BIGINT) AS pharmacies_30d,
        CAST(sum(CASE WHEN facility_id IS NOT NULL AND min_age_pharmacy < 90 THEN 1 ELSE 0 END)
            AS BIGINT) AS pharmacies_90d,
        CAST(sum(CASE WHEN facility_id IS NOT NULL AND min_age_pharmacy IS NOT NULL
            THEN 1 ELSE 0 END) AS BIGINT) AS pharmacies_365d,
        sum(fund_paid) AS fund_365d
    FROM per_facility
    GROUP BY person_id, period
),

supply AS (
    SELECT
        h.person_id,
        h.period,
        sum(l.drug_days_supply) AS days_supply_90d
    FROM hist h
    JOIN stg_claim_lines l ON l.settlement_id = h.settlement_id
    WHERE h.age_days < 90
    GROUP BY h.person_id, h.period
),

month_lines AS (
    SELECT
        s.person_id,
        s.period,
        sum(l.amt_drug) AS drug_amount,
        sum(l.amt_resale_drug) AS resale_amount,
        sum(l.amt_patent_tcm) AS patent_tcm_amount,
        sum(l.line_amount) AS line_amount
    FROM stg_claim_lines l
    JOIN stg_settlements s ON s.settlement_id = l.settlement_id
    GROUP BY s.person_id, s.period
),

visit_days AS (
    SELECT DISTINCT facility_id, settle_day, period, person_id FROM stg_settlements
),

small_days AS (
    SELECT facility_id, settle_day
    FROM visit_days
    GROUP BY facility_id, settle_day
    HAVING count(*) <= 10
),

covisits AS (
    SELECT a.person_id, a.period, b.person_id AS other_id, count(*) AS n_days
    FROM visit_days a
    JOIN small_days d ON d.facility_id = a.facility_id AND d.settle_day = a.settle_day
    JOIN visit_days b
        ON b.facility_id = a.facility_id AND b.settle_day = a.settle_day
        AND b.person_id <> a.person_id
    GROUP BY a.person_id, a.period, b.person_id
),

co AS (
    SELECT
        person_id,
        period,
        CAST(max(n_days) AS BIGINT) AS covisit_max_days,
        CAST(sum(CASE WHEN n_days >= 2 THEN 1 ELSE 0 END) AS BIGINT) AS covisit_partners
    FROM covisits
    GROUP BY person_id, period
)

SELECT
    pm.person_id,
    pm.period,
    p.insurance_type,
    p.sex,
    CAST(floor(CAST(date_diff('day', p.birth_date, pm.month_end) AS DOUBLE) / 365.25) AS BIGINT) AS age_years,
    u.visits_30d,
    u.visits_90d,
    u.visits_365d,
    u.facilities_30d,
    u.facilities_90d,
    u.facilities_365d,
    u.pharmacies_30d,
    u.pharmacies_90d,
    u.pharmacies_365d,
    u.fund_365d,
    CASE WHEN m.has_fee_lines AND m.has_catalogue
        THEN CAST(coalesce(sp.days_supply_90d, 0) AS DOUBLE) / 90 END AS possession_ratio_90d,
    CASE WHEN m.has_fee_lines AND m.has_catalogue THEN coalesce(ml.drug_amount, 0.0) END
        AS drug_amount,
    CASE WHEN m.has_catalogue THEN ml.resale_amount / nullif(ml.drug_amount, 0) END
        AS resale_drug_share,
    CASE WHEN m.has_fee_lines AND m.has_catalogue THEN coalesce(ml.patent_tcm_amount, 0.0) END
        AS patent_tcm_amount,
    CASE WHEN m.has_catalogue THEN ml.patent_tcm_amount / nullif(ml.line_amount, 0) END
        AS patent_tcm_share,
    CAST(coalesce(co.covisit_max_days, 0) AS BIGINT) AS covisit_max_days,
    CAST(coalesce(co.covisit_partners, 0) AS BIGINT) AS covisit_partners
FROM pm
CROSS JOIN fs_meta m
LEFT JOIN persons p ON p.person_id = pm.person_id
LEFT JOIN usage u ON u.person_id = pm.person_id AND u.period = pm.period
LEFT JOIN supply sp ON sp.person_id = pm.person_id AND sp.period = pm.period
LEFT JOIN month_lines ml ON ml.person_id = pm.person_id AND ml.period = pm.period
LEFT JOIN co ON co.person_id = pm.person_id AND co.period = pm.period
