-- model: stg_claim_lines
-- doc: Fee lines summed per settlement by catalogue class, with idle-day runs of stays; empty when there are no fee lines.
WITH lines AS (
    SELECT
        l.settlement_id,
        l.line_id,
        l.item_code,
        CAST(l.amount AS DOUBLE) AS amount,
        CAST(l.service_time AS DATE) AS service_day,
        coalesce(c.item_class, 'other') AS item_class,
        CAST(coalesce(l.days_supply, 0) AS BIGINT) AS days_supply,
        coalesce(c.resale_prone, FALSE) AS resale_prone,
        (c.indications IS NOT NULL OR c.restriction_text IS NOT NULL) AS restricted
    FROM fee_lines l
    LEFT JOIN catalogue c ON c.item_code = l.item_code
),

days AS (
    -- a day is idle when every line on it is bed, nursing or consultation
    SELECT
        l.settlement_id,
        l.service_day,
        min(CASE WHEN l.item_class IN ('bed', 'nursing', 'consultation') THEN 1 ELSE 0 END)
            AS idle
    FROM lines l
    JOIN settlements s ON s.settlement_id = l.settlement_id
    WHERE s.medical_type IN ('21', '52')
    GROUP BY l.settlement_id, l.service_day
),

islands AS (
    SELECT
        settlement_id,
        date_diff('day', DATE '2000-01-01', service_day)
        - row_number() OVER (PARTITION BY settlement_id ORDER BY service_day) AS island
    FROM days
    WHERE idle = 1
),

runs AS (
    SELECT settlement_id, sum(n) AS idle_days, max(n) AS max_idle_run
    FROM (
        SELECT settlement_id, island, count(*) AS n FROM islands GROUP BY settlement_id, island
    ) r
    GROUP BY settlement_id
)

SELECT
    l.settlement_id,
    CAST(count(*) AS BIGINT) AS n_lines,
    CAST(count(DISTINCT l.item_code) AS BIGINT) AS n_items,
    CAST(count(DISTINCT l.service_day) AS BIGINT) AS service_days,
    sum(l.amount) AS line_amount,
    sum(CASE WHEN l.item_class = 'western_drug' THEN l.amount ELSE 0 END) AS amt_western_drug,
    sum(CASE WHEN l.item_class = 'patent_tcm' THEN l.amount ELSE 0 END) AS amt_patent_tcm,
    sum(CASE WHEN l.item_class = 'herbal_piece' THEN l.amount ELSE 0 END) AS amt_herbal_piece,
    sum(CASE WHEN l.item_class = 'bed' THEN l.amount ELSE 0 END) AS amt_bed,
    sum(CASE WHEN l.item_class = 'nursing' THEN l.amount ELSE 0 END) AS amt_nursing,
    sum(CASE WHEN l.item_class = 'consultation' THEN l.amount ELSE 0 END) AS amt_consultation,
    sum(CASE WHEN l.item_class = 'lab' THEN l.amount ELSE 0 END) AS amt_lab,
    sum(CASE WHEN l.item_class = 'imaging' THEN l.amount ELSE 0 END) AS amt_imaging,
    sum(CASE WHEN l.item_class = 'treatment' THEN l.amount ELSE 0 END) AS amt_treatment,
    sum(CASE WHEN l.item_class = 'surgery' THEN l.amount ELSE 0 END) AS amt_surgery,
    sum(CASE WHEN l.item_class = 'rehabilitation' THEN l.amount ELSE 0 END)
        AS amt_rehabilitation,
    sum(CASE WHEN l.item_class = 'dialysis' THEN l.amount ELSE 0 END) AS amt_dialysis,
    sum(CASE WHEN l.item_class = 'consumable' THEN l.amount ELSE 0 END) AS amt_consumable,
    sum(CASE WHEN l.item_class = 'other' THEN l.amount ELSE 0 END) AS amt_other,
    sum(CASE WHEN l.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
        THEN l.amount ELSE 0 END) AS amt_drug,
    sum(CASE WHEN l.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
        AND l.resale_prone THEN l.amount ELSE 0 END) AS amt_resale_drug,
    CAST(sum(CASE WHEN l.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
        THEN 1 ELSE 0 END) AS BIGINT) AS n_drug_lines,
    CAST(sum(CASE WHEN l.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
        AND l.restricted THEN 1 ELSE 0 END) AS BIGINT) AS n_restricted_drug_lines,
    CAST(sum(CASE WHEN l.item_class IN ('western_drug', 'patent_tcm', 'herbal_piece')
        THEN l.days_supply ELSE 0 END) AS BIGINT) AS drug_days_supply,
    CAST(coalesce(max(r.idle_days), 0) AS BIGINT) AS idle_days,
    CAST(coalesce(max(r.max_idle_run), 0) AS BIGINT) AS max_idle_run
FROM lines l
LEFT JOIN runs r ON r.settlement_id = l.settlement_id
GROUP BY l.settlement_id
