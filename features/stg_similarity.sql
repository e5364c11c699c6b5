-- model: stg_similarity
-- doc: Max Jaccard similarity of each stay's item-code set to another person's stay at the same facility in the same month (template records, BRIEF M06).
-- Items used by more than 200 stays of a facility-month are left out like stop-words: they
-- carry no template signal and would make the pair join quadratic. The cap is set in `kept`.
WITH items AS (
    SELECT DISTINCT
        s.settlement_id,
        s.person_id,
        s.facility_id,
        s.period,
        s.attending_staff_id,
        l.item_code
    FROM fee_lines l
    JOIN stg_settlements s ON s.settlement_id = l.settlement_id
    WHERE s.is_inpatient
),

df AS (
    SELECT facility_id, period, item_code, count(*) AS n_stays
    FROM items
    GROUP BY facility_id, period, item_code
),

kept AS (
    SELECT i.*
    FROM items i
    JOIN df d
        ON d.facility_id = i.facility_id AND d.period = i.period AND d.item_code = i.item_code
    WHERE d.n_stays <= 200
),

sizes AS (
    SELECT settlement_id, count(*) AS n_items FROM kept GROUP BY settlement_id
),

pairs AS (
    SELECT
        a.settlement_id AS a_id,
        b.settlement_id AS b_id,
        coalesce(a.attending_staff_id = b.attending_staff_id, FALSE) AS same_staff,
        count(*) AS n_shared
    FROM kept a
    JOIN kept b
        ON a.facility_id = b.facility_id
        AND a.period = b.period
        AND a.item_code = b.item_code
        AND a.person_id <> b.person_id
    GROUP BY a.settlement_id, b.settlement_id,
        coalesce(a.attending_staff_id = b.attending_staff_id, FALSE)
),

best AS (
    SELECT
        p.a_id AS settlement_id,
        max(CAST(p.n_shared AS DOUBLE) / (sa.n_items + sb.n_items - p.n_shared)) AS max_jaccard,
        max(CASE WHEN p.same_staff
            THEN CAST(p.n_shared AS DOUBLE) / (sa.n_items + sb.n_items - p.n_shared)
        END) AS max_jaccard_same_staff
    FROM pairs p
    JOIN sizes sa ON sa.settlement_id = p.a_id
    JOIN sizes sb ON sb.settlement_id = p.b_id
    GROUP BY p.a_id
)

SELECT
    z.settlement_id,
    coalesce(b.max_jaccard, 0.0) AS max_jaccard,
    coalesce(b.max_jaccard_same_staff, 0.0) AS max_jaccard_same_staff
FROM sizes z
LEFT JOIN best b ON b.settlement_id = z.settlement_id
