-- Per day and channel: leads created (a canonical lead's first lead_created), stage entries (visits,
-- stage_visits.sql), opportunities created (deals, opportunities.sql), conversions and their revenue
-- (attribution.conversions: one per deal however many systems reported it). The channel is the
-- lead's first touch (campaign touches linked as attribution links them), `direct` without one.
WITH linked_touches AS ({touches}
), first_touch AS (
    SELECT lead_id AS lead_key, channel AS first_channel
    FROM (SELECT lead_id, channel,
                 row_number() OVER (PARTITION BY lead_id ORDER BY touch_occurred_at, touch_event_id) AS touch_rank
          FROM linked_touches) AS t
    WHERE touch_rank = 1
), visits AS ({stage_visits}
), opportunities AS ({opportunities}
), conversions AS ({conversions}
), facts AS (
    SELECT canonical_lead_id AS lead_key, CAST(min(occurred_at) AS DATE) AS fact_day, 'lead_created' AS metric,
           CAST(NULL AS VARCHAR) AS fact_stage, CAST(0 AS DOUBLE) AS amount
    FROM {core.events}
    WHERE event_type = 'lead_created' AND canonical_lead_id IS NOT NULL
    GROUP BY canonical_lead_id
    UNION ALL
    SELECT canonical_lead_id, CAST(entered_at AS DATE), 'stage_entered', stage, CAST(0 AS DOUBLE)
    FROM visits
    UNION ALL
    SELECT canonical_lead_id, CAST(opened_at AS DATE), 'opportunity_created', NULL, CAST(0 AS DOUBLE)
    FROM opportunities
    UNION ALL
    SELECT lead_id, CAST(conversion_at AS DATE), 'conversion', NULL, coalesce(revenue, 0.0)
    FROM conversions
)
SELECT f.fact_day AS day,
       coalesce(ft.first_channel, 'direct') AS channel,
       count(*) FILTER (WHERE f.metric = 'lead_created') AS leads_created,{stage_entries}
       count(*) FILTER (WHERE f.metric = 'opportunity_created') AS opportunities_created,
       count(*) FILTER (WHERE f.metric = 'conversion') AS conversions,
       coalesce(sum(f.amount) FILTER (WHERE f.metric = 'conversion'), 0.0) AS revenue
FROM facts AS f
LEFT JOIN first_touch AS ft ON ft.lead_key = f.lead_key
WHERE f.fact_day IS NOT NULL
GROUP BY f.fact_day, coalesce(ft.first_channel, 'direct')
