-- One row per canonical lead (every lead id of a person-scoped event, after identity resolution).
-- Properties: each one's latest value over the lead's lead_created and lead_updated events of every
-- source, ordered by time, then source trust (source_rank: at one instant the most trusted source
-- wins), ingestion and event id. An update that lists a property in changed_fields without a value
-- cleared it (NULL); a value that is a keyed PII hash is never shown (NULL).
WITH leads AS (
    SELECT DISTINCT canonical_lead_id
    FROM {core.events}
    WHERE canonical_lead_id IS NOT NULL AND list_contains($person_types, event_type)
), lead_events AS (
    SELECT canonical_lead_id{property_values},
           coalesce(attributes ->> 'changed_fields', '') AS changed,
           row_number() OVER (PARTITION BY canonical_lead_id
                              ORDER BY occurred_at, {source_rank} DESC, ingested_at, event_id) AS seq
    FROM {core.events}
    WHERE event_type IN ('lead_created', 'lead_updated') AND canonical_lead_id IS NOT NULL
), properties AS (
    SELECT canonical_lead_id AS lead_key{properties}
    FROM lead_events
    GROUP BY canonical_lead_id
), created AS (
    SELECT canonical_lead_id AS lead_key, min(occurred_at) AS created_at
    FROM {core.events}
    WHERE event_type = 'lead_created' AND canonical_lead_id IS NOT NULL
    GROUP BY canonical_lead_id
), records AS (
    SELECT lead_id AS lead_key, count(*) AS record_count
    FROM ({identity_map}) AS m
    GROUP BY lead_id
), visits AS ({stage_visits}
), current_visit AS (
    SELECT canonical_lead_id AS lead_key, stage AS visit_stage, entered_at AS visit_entered_at
    FROM (SELECT canonical_lead_id, stage, entered_at,
                 row_number() OVER (PARTITION BY canonical_lead_id ORDER BY visit DESC) AS visit_rank
          FROM visits) AS v
    WHERE visit_rank = 1
), watermark AS ({watermark}
), linked_touches AS ({touches}
), touch_stats AS (
    SELECT t.lead_id AS lead_key, count(*) AS touch_count,
           count(*) FILTER (WHERE date_diff('microsecond', t.touch_occurred_at, w.data_watermark) <= $recent_us)
               AS recent_count,
           max(t.touch_occurred_at) AS latest_touch_at,
           max(CASE WHEN t.first_rank = 1 THEN t.channel END) AS first_channel,
           max(CASE WHEN t.last_rank = 1 THEN t.channel END) AS last_channel
    FROM (SELECT lead_id, channel, touch_occurred_at,
                 row_number() OVER (PARTITION BY lead_id ORDER BY touch_occurred_at, touch_event_id) AS first_rank,
                 row_number() OVER (PARTITION BY lead_id ORDER BY touch_occurred_at DESC, touch_event_id DESC)
                     AS last_rank
          FROM linked_touches) AS t
    CROSS JOIN watermark AS w
    GROUP BY t.lead_id
), opportunities AS ({opportunities}
), open_deals AS (
    SELECT canonical_lead_id AS lead_key, count(*) AS open_count, sum(coalesce(deal_amount, 0.0)) AS open_amount
    FROM opportunities
    WHERE deal_closed = 0
    GROUP BY canonical_lead_id
), conversions AS ({conversions}
), won AS (
    SELECT lead_id AS lead_key, count(*) AS won_count, sum(coalesce(revenue, 0.0)) AS won_total
    FROM conversions
    GROUP BY lead_id
), scores AS ({lead_scores}
), latest_score AS (
    SELECT lead_id AS lead_key, score AS score_value, tier AS score_tier, model_version AS score_model,
           as_of AS score_as_of
    FROM (SELECT lead_id, score, tier, model_version, as_of,
                 row_number() OVER (PARTITION BY lead_id ORDER BY as_of DESC, scored_at DESC, model_version DESC)
                     AS score_rank
          FROM scores) AS s
    WHERE score_rank = 1
)
SELECT l.canonical_lead_id AS lead_id,
       c.created_at,
       CASE WHEN $lead_identity_map_present THEN coalesce(r.record_count, 0) END AS source_records,
       {current_stage} AS current_stage,
       {stage_entered_at} AS stage_entered_at{property_columns},
       coalesce(t.touch_count, 0) AS touches,
       coalesce(t.recent_count, 0) AS touches_last_30d,
       t.first_channel AS first_touch_channel,
       t.last_channel AS last_touch_channel,
       t.latest_touch_at AS last_touch_at,
       coalesce(o.open_count, 0) AS open_opportunities,
       coalesce(o.open_amount, 0.0) AS open_opportunity_amount,
       CASE WHEN $conversions_present THEN coalesce(k.won_count, 0) END AS won_deals,
       CASE WHEN $conversions_present THEN coalesce(k.won_total, 0.0) END AS won_revenue,
       s.score_value AS lead_score,
       s.score_tier AS lead_score_tier,
       s.score_model AS lead_score_model_version,
       s.score_as_of AS lead_score_as_of,
       w.data_watermark
FROM leads AS l
CROSS JOIN watermark AS w
LEFT JOIN properties AS p ON p.lead_key = l.canonical_lead_id
LEFT JOIN created AS c ON c.lead_key = l.canonical_lead_id
LEFT JOIN records AS r ON r.lead_key = l.canonical_lead_id
LEFT JOIN current_visit AS cv ON cv.lead_key = l.canonical_lead_id
LEFT JOIN touch_stats AS t ON t.lead_key = l.canonical_lead_id
LEFT JOIN open_deals AS o ON o.lead_key = l.canonical_lead_id
LEFT JOIN won AS k ON k.lead_key = l.canonical_lead_id
LEFT JOIN latest_score AS s ON s.lead_key = l.canonical_lead_id
