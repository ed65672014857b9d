-- The data-driven models' credits: each conversion's credit is split over the channels of its
-- window by the model's shares for that channel set (attribution.channel_shares, fitted in Python
-- on aggregates), and a channel's share evenly over its touches in the window.
SELECT s.model, t.conversion_event_id, t.lead_id, t.touch_event_id, t.channel, t.campaign_id, t.touch_occurred_at,
       CASE WHEN t.touches = 0 THEN 1.0 ELSE s.share / t.channel_touches END AS credit,
       CASE WHEN t.touches = 0 THEN 1.0 ELSE s.share / t.channel_touches END * t.revenue AS revenue_credit
FROM {attribution.conversion_touches} AS t
JOIN {attribution.channel_shares} AS s ON s.channel_set = t.channel_set AND s.channel = t.channel
WHERE s.share > 0
