-- Journeys aggregated to distinct paths for the Markov model: a conversion's channels in time order
-- with consecutive repeats collapsed (a conversion without touches is the path `direct`), and each
-- unconverted lead's null path. The Markov fit then never sees single touches.
WITH steps AS (
    SELECT 1 AS converted, conversion_event_id AS unit, channel, touch_occurred_at, touch_event_id, revenue
    FROM {attribution.conversion_touches}
    UNION ALL
    SELECT 0 AS converted, lead_id AS unit, channel, touch_occurred_at, touch_event_id, 0.0 AS revenue
    FROM {attribution.null_touches}
), marked AS (
    SELECT *,
           lag(channel) OVER (PARTITION BY converted, unit ORDER BY touch_occurred_at, touch_event_id) AS previous
    FROM steps
), journeys AS (
    SELECT converted, unit, max(revenue) AS revenue,
           string_agg(channel, '>' ORDER BY touch_occurred_at, touch_event_id) AS path
    FROM marked
    WHERE previous IS NULL OR previous <> channel
    GROUP BY converted, unit
)
SELECT path, sum(converted) AS conversions, sum(1 - converted) AS nulls, sum(revenue) AS revenue
FROM journeys
GROUP BY path
ORDER BY path
