-- Each conversion with the touches of its lookback window: at most $lookback_seconds before it, and,
-- when $max_steps > 0, only the last $max_steps touches. A conversion with no touch in its window
-- gets one row of channel `direct` without a touch (touches = 0), so every model can credit it.
-- channel_set is the bit set of the window's channels (attribution.channels).
WITH windowed AS (
    SELECT c.conversion_event_id, c.lead_id, c.conversion_at, c.revenue,
           t.touch_event_id, t.channel, t.campaign_id, t.touch_occurred_at,
           row_number() OVER (PARTITION BY c.conversion_event_id
                              ORDER BY t.touch_occurred_at DESC, t.touch_event_id DESC) AS steps_back
    FROM {attribution.conversions} AS c
    JOIN {attribution.touches} AS t ON t.lead_id = c.lead_id
    WHERE t.touch_occurred_at <= c.conversion_at
      AND date_diff('second', t.touch_occurred_at, c.conversion_at) <= $lookback_seconds
), kept AS (
    SELECT w.*, ch.bit
    FROM windowed AS w
    JOIN {attribution.channels} AS ch ON ch.channel = w.channel
    WHERE $max_steps = 0 OR w.steps_back <= $max_steps
), sets AS (
    SELECT conversion_event_id, bit_or(bit) AS channel_set FROM kept GROUP BY conversion_event_id
)
SELECT k.conversion_event_id, k.lead_id, k.conversion_at, k.revenue, k.touch_event_id, k.channel, k.campaign_id,
       k.touch_occurred_at,
       date_diff('microsecond', k.touch_occurred_at, k.conversion_at) / 86400000000.0 AS age_days,
       row_number() OVER (PARTITION BY k.conversion_event_id ORDER BY k.touch_occurred_at, k.touch_event_id) AS touch_index,
       count(*) OVER (PARTITION BY k.conversion_event_id) AS touches,
       count(*) OVER (PARTITION BY k.conversion_event_id, k.channel) AS channel_touches,
       s.channel_set
FROM kept AS k
JOIN sets AS s ON s.conversion_event_id = k.conversion_event_id
UNION ALL
SELECT c.conversion_event_id, c.lead_id, c.conversion_at, c.revenue, NULL AS touch_event_id, 'direct' AS channel,
       NULL AS campaign_id, NULL AS touch_occurred_at, NULL AS age_days, 0 AS touch_index, 0 AS touches,
       0 AS channel_touches, 0 AS channel_set
FROM {attribution.conversions} AS c
WHERE c.conversion_event_id NOT IN (SELECT conversion_event_id FROM kept)
