-- The touches of leads that never converted, in a lookback window that ends at their last touch
-- (the same $lookback_seconds and $max_steps as conversions get): the null paths of the Markov
-- model and the unconverted coalitions of Shapley and the regression.
WITH unconverted AS (
    SELECT t.*, max(t.touch_occurred_at) OVER (PARTITION BY t.lead_id) AS last_at
    FROM {attribution.touches} AS t
    WHERE t.lead_id NOT IN (SELECT lead_id FROM {attribution.conversions})
), windowed AS (
    SELECT u.*,
           row_number() OVER (PARTITION BY u.lead_id ORDER BY u.touch_occurred_at DESC, u.touch_event_id DESC) AS steps_back
    FROM unconverted AS u
    WHERE date_diff('second', u.touch_occurred_at, u.last_at) <= $lookback_seconds
)
SELECT w.lead_id, w.touch_event_id, w.channel, w.touch_occurred_at, ch.bit
FROM windowed AS w
JOIN {attribution.channels} AS ch ON ch.channel = w.channel
WHERE $max_steps = 0 OR w.steps_back <= $max_steps
