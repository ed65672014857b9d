-- Conversions and revenue by the channel set of their window: what a data-driven model's shares
-- turn into channel totals, and what the bootstrap resamples.
WITH conversions AS (
    SELECT DISTINCT conversion_event_id, channel_set, revenue FROM {attribution.conversion_touches}
)
SELECT channel_set, count(*) AS conversions, sum(revenue) AS revenue
FROM conversions
GROUP BY channel_set
ORDER BY channel_set
