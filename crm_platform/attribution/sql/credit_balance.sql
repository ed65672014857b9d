-- Conversions whose credits, in some model, do not sum to 1 or whose revenue credits do not sum to
-- the conversion's revenue; and conversions a model did not credit at all.
WITH sums AS (
    SELECT model, conversion_event_id, sum(credit) AS credit, sum(revenue_credit) AS revenue_credit
    FROM {attribution.credits}
    GROUP BY model, conversion_event_id
), expected AS (
    SELECT m.model, c.conversion_event_id, c.revenue
    FROM {attribution.conversions} AS c
    CROSS JOIN (SELECT DISTINCT model FROM {attribution.channel_shares}
                UNION DISTINCT SELECT unnest($rule_models) AS model) AS m
)
SELECT e.model,
       count(*) FILTER (WHERE s.conversion_event_id IS NULL) AS uncredited,
       count(*) FILTER (WHERE abs(s.credit - 1.0) > 1e-9) AS credit_off,
       count(*) FILTER (WHERE abs(s.revenue_credit - e.revenue) > 1e-6 * greatest(1.0, abs(e.revenue))) AS revenue_off
FROM expected AS e
LEFT JOIN sums AS s ON s.model = e.model AND s.conversion_event_id = e.conversion_event_id
GROUP BY e.model
ORDER BY e.model
