-- model: stg_rule_hits
-- doc: Rule-engine findings (table rule_findings) per settlement; empty when the rule engine has not run.
SELECT
    settlement_id,
    CAST(count(*) AS BIGINT) AS n_findings,
    CAST(sum(coalesce(amount, 0)) AS DOUBLE) AS findings_amount,
    CAST(count(DISTINCT rule_id) AS BIGINT) AS n_rules
FROM rule_findings
WHERE settlement_id IS NOT NULL
GROUP BY settlement_id
