-- The rule-based models' credits: one row per (model, conversion, touch). Every conversion's
-- credits sum to 1 in each model; a conversion without touches (touches = 0) gives its whole
-- credit to `direct`. Ties in time are broken by touch_event_id (touch_index).
WITH decay AS (
    SELECT *,
           pow(2.0, -age_days / $half_life_days) AS decay_weight
    FROM {attribution.conversion_touches}
), weighted AS (
    SELECT *,
           sum(decay_weight) OVER (PARTITION BY conversion_event_id) AS decay_total
    FROM decay
), models AS (
    SELECT m.model, w.*
    FROM weighted AS w
    CROSS JOIN (SELECT unnest(['first_touch', 'last_touch', 'linear', 'position_based', 'time_decay']) AS model) AS m
), credited AS (
    SELECT model, conversion_event_id, lead_id, touch_event_id, channel, campaign_id, touch_occurred_at, revenue,
           CASE WHEN touches = 0 THEN 1.0
                WHEN model = 'first_touch' THEN CASE WHEN touch_index = 1 THEN 1.0 ELSE 0.0 END
                WHEN model = 'last_touch' THEN CASE WHEN touch_index = touches THEN 1.0 ELSE 0.0 END
                WHEN model = 'linear' THEN 1.0 / touches
                WHEN model = 'position_based' THEN
                    CASE WHEN touches = 1 THEN 1.0
                         WHEN touches = 2 THEN 0.5
                         WHEN touch_index = 1 THEN $first_weight
                         WHEN touch_index = touches THEN $last_weight
                         ELSE (1.0 - $first_weight - $last_weight) / (touches - 2) END
                ELSE decay_weight / decay_total END AS credit
    FROM models
)
SELECT model, conversion_event_id, lead_id, touch_event_id, channel, campaign_id, touch_occurred_at,
       credit, credit * revenue AS revenue_credit
FROM credited
WHERE credit > 0
