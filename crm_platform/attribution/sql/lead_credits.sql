-- The rule-based models' credits summed per lead and channel, leads numbered densely (in lead id
-- order, the same on every engine): what the bootstrap re-weights lead by lead.
WITH leads AS (
    SELECT lead_id, row_number() OVER (ORDER BY lead_id) - 1 AS lead
    FROM (SELECT DISTINCT lead_id FROM {attribution.conversions}) AS converted
), per_lead AS (
    SELECT lead_id, model, channel, sum(credit) AS credit, sum(revenue_credit) AS revenue_credit
    FROM {attribution.credits}
    WHERE list_contains($rule_models, model)
    GROUP BY lead_id, model, channel
)
SELECT l.lead, p.model, p.channel, p.credit, p.revenue_credit
FROM per_lead AS p
JOIN leads AS l ON l.lead_id = p.lead_id
