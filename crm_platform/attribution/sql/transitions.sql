-- The Markov chain's transition counts, aggregated in the engine: each journey's channels in time
-- order with consecutive repeats collapsed (a conversion without touches is `direct`; unconverted
-- leads give null journeys), its states the last k channels seen (the model's order), joined by '>'. One row per
-- (from_state, to_state) with its count; '(start)' begins every journey, '(conversion)' or '(null)'
-- ends it. The fit in Python then depends on the states, not on the touches.
WITH steps AS (
    SELECT 1 AS converted, conversion_event_id AS unit, channel, touch_occurred_at, touch_event_id
    FROM {attribution.conversion_touches}
    UNION ALL
    SELECT 0 AS converted, lead_id AS unit, channel, touch_occurred_at, touch_event_id
    FROM {attribution.null_touches}
), marked AS (
    SELECT *,
           lag(channel) OVER (PARTITION BY converted, unit ORDER BY touch_occurred_at, touch_event_id) AS previous
    FROM steps
), collapsed AS (
    SELECT converted, unit, channel, touch_occurred_at, touch_event_id FROM marked
    WHERE previous IS NULL OR previous <> channel
), states AS (
    SELECT converted, unit, touch_occurred_at, touch_event_id, {state} AS state FROM collapsed
), moves AS (
    SELECT converted,
           coalesce(lag(state) OVER (PARTITION BY converted, unit ORDER BY touch_occurred_at, touch_event_id),
                    '(start)') AS from_state,
           state AS to_state,
           lead(state) OVER (PARTITION BY converted, unit ORDER BY touch_occurred_at, touch_event_id) IS NULL AS last
    FROM states
)
SELECT from_state, to_state, count(*) AS transitions FROM moves GROUP BY from_state, to_state
UNION ALL
-- (the ends get names of their own: ClickHouse would read a reused alias as the new expression)
SELECT to_state AS last_state, CASE WHEN converted = 1 THEN '(conversion)' ELSE '(null)' END AS absorbed,
       count(*) AS transitions
FROM moves WHERE last
GROUP BY 1, 2
ORDER BY from_state, to_state
