-- model: stg_settlements
-- doc: One row per settlement with its month, stay length, peer keys, age and previous stays; the base of every subject.
-- Written in the DuckDB/Spark common subset (see features/README.md); no ratio here, only facts.
WITH s AS (
    SELECT
        s.settlement_id,
        s.person_id,
        s.facility_id,
        s.attending_staff_id,
        s.medical_type,
        s.department,
        s.main_diagnosis,
        s.discharge_way,
        s.settle_time,
        strftime(s.settle_time, '%Y-%m') AS period,
        CAST(s.settle_time AS DATE) AS settle_day,
        CAST(s.admission_time AS DATE) AS admit_day,
        CAST(s.discharge_time AS DATE) AS discharge_day,
        s.medical_type IN ('21', '52') AS is_inpatient,
        CASE
            WHEN s.medical_type IN ('21', '52') THEN CAST(greatest(date_diff('day',
                CAST(s.admission_time AS DATE), CAST(s.discharge_time AS DATE)), 1) AS BIGINT)
        END AS los_days,
        coalesce(s.drg_code, substr(s.main_diagnosis, 1, 3)) AS dx_group,
        coalesce(s.planned_readmission, FALSE) AS planned_readmission,
        CAST(s.total_amount AS DOUBLE) AS total_amount,
        CAST(s.fund_paid AS DOUBLE) AS fund_paid,
        CAST(coalesce(s.full_self_pay, 0) AS DOUBLE) AS full_self_pay,
        coalesce(s.out_of_area, FALSE) AS out_of_area,
        f.facility_type,
        CAST(coalesce(f.level, 0) AS BIGINT) AS facility_level,
        f.district AS facility_district,
        f.beds,
        coalesce(f.facility_type IN ('retail_pharmacy', 'dual_channel_pharmacy'), FALSE)
            AS at_pharmacy,
        CAST(floor(CAST(date_diff('day', p.birth_date, CAST(s.settle_time AS DATE)) AS DOUBLE) / 365.25)
            AS BIGINT) AS age_years
    FROM settlements s
    LEFT JOIN facilities f ON f.facility_id = s.facility_id
    LEFT JOIN persons p ON p.person_id = s.person_id
),

stays AS (
    SELECT
        settlement_id,
        lag(discharge_day) OVER (
            PARTITION BY person_id ORDER BY settle_time, settlement_id) AS prev_discharge_day,
        lag(settle_day) OVER (
            PARTITION BY person_id ORDER BY settle_time, settlement_id) AS prev_settle_day,
        lag(dx_group) OVER (
            PARTITION BY person_id ORDER BY settle_time, settlement_id) AS prev_dx_group,
        lag(discharge_day) OVER (
            PARTITION BY person_id, facility_id ORDER BY settle_time, settlement_id)
            AS prev_here_discharge_day,
        lag(settle_day) OVER (
            PARTITION BY person_id, facility_id ORDER BY settle_time, settlement_id)
            AS prev_here_settle_day
    FROM s
    WHERE is_inpatient
)

SELECT
    s.*,
    -- previous stays older than 365 days are ignored so a month only depends on the past year
    CASE
        WHEN date_diff('day', st.prev_settle_day, s.settle_day) <= 365
            THEN CAST(date_diff('day', st.prev_discharge_day, s.admit_day) AS BIGINT)
    END AS days_since_prev_stay,
    CASE
        WHEN date_diff('day', st.prev_settle_day, s.settle_day) <= 365
            THEN st.prev_dx_group = s.dx_group
    END AS prev_stay_same_dx,
    coalesce(
        date_diff('day', st.prev_here_settle_day, s.settle_day) <= 365
        AND date_diff('day', st.prev_here_discharge_day, s.admit_day) BETWEEN 0 AND 31
        AND NOT s.planned_readmission,
        FALSE
    ) AS readmit_31d
FROM s
LEFT JOIN stays st ON st.settlement_id = s.settlement_id
