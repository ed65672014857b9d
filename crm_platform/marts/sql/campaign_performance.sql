-- Per campaign and channel (a touch without a campaign counts under its channel, campaign_id NULL)
-- and attribution model: touches (every campaign_touch, anonymous ones included), touches linked to
-- a canonical lead and the leads they reach, current spend (attribution/spend.py), and the model's
-- conversions, revenue, cost per conversion and ROAS from attribution.campaign_summary. A campaign the
-- model credits nothing has 0 conversions and revenue (ROAS 0 where it had spend); all four are NULL
-- while attribution has not run ($campaign_summary_present false).
WITH all_touches AS (
    SELECT attributes ->> 'channel' AS touch_channel, coalesce(attributes ->> 'campaign_id', '') AS touch_campaign,
           count(*) AS touch_count
    FROM {core.events}
    WHERE event_type = 'campaign_touch'
    GROUP BY attributes ->> 'channel', coalesce(attributes ->> 'campaign_id', '')
), linked_touches AS ({touches}
), linked_stats AS (
    SELECT channel AS linked_channel, coalesce(campaign_id, '') AS linked_campaign,
           count(*) AS linked_count, count(DISTINCT lead_id) AS lead_count
    FROM linked_touches
    GROUP BY channel, coalesce(campaign_id, '')
), spend AS (
    SELECT channel AS spend_channel, coalesce(campaign_id, '') AS spend_campaign, sum(spend) AS spend_total,
           max(campaign_name) AS spend_campaign_name
    FROM ({spend}
    ) AS s
    GROUP BY channel, coalesce(campaign_id, '')
), summary AS (
    SELECT model AS summary_model, channel AS summary_channel, coalesce(campaign_id, '') AS summary_campaign,
           conversions AS summary_conversions, revenue AS summary_revenue,
           cost_per_conversion AS summary_cost_per_conversion, roas AS summary_roas
    FROM ({campaign_summary}) AS cs
), campaign_keys AS (
    SELECT DISTINCT key_channel, key_campaign
    FROM (SELECT touch_channel AS key_channel, touch_campaign AS key_campaign FROM all_touches
          UNION ALL
          SELECT spend_channel, spend_campaign FROM spend
          UNION ALL
          SELECT summary_channel, summary_campaign FROM summary) AS u
    WHERE key_channel IS NOT NULL
), models AS (
    SELECT unnest($models) AS model_name
)
SELECT ck.key_channel AS channel,
       nullif(ck.key_campaign, '') AS campaign_id,
       sp.spend_campaign_name AS campaign_name,
       m.model_name AS model,
       coalesce(t.touch_count, 0) AS touches,
       coalesce(l.linked_count, 0) AS linked_touches,
       coalesce(l.lead_count, 0) AS leads_touched,
       sp.spend_total AS spend,
       CASE WHEN $campaign_summary_present THEN coalesce(s.summary_conversions, 0.0) END AS conversions,
       CASE WHEN $campaign_summary_present THEN coalesce(s.summary_revenue, 0.0) END AS revenue,
       s.summary_cost_per_conversion AS cost_per_conversion,
       CASE WHEN s.summary_model IS NOT NULL THEN s.summary_roas
            WHEN $campaign_summary_present AND sp.spend_total > 0 THEN 0.0 END AS roas
FROM campaign_keys AS ck
CROSS JOIN models AS m
LEFT JOIN all_touches AS t ON t.touch_channel = ck.key_channel AND t.touch_campaign = ck.key_campaign
LEFT JOIN linked_stats AS l ON l.linked_channel = ck.key_channel AND l.linked_campaign = ck.key_campaign
LEFT JOIN spend AS sp ON sp.spend_channel = ck.key_channel AND sp.spend_campaign = ck.key_campaign
LEFT JOIN summary AS s ON s.summary_model = m.model_name AND s.summary_channel = ck.key_channel
                      AND s.summary_campaign = ck.key_campaign
