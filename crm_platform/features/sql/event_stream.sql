-- The events the window features count, by canonical lead, computed once per run: activities,
-- stage changes and touches. A touch without a lead id counts for the lead its browser's user_id
-- names, from the first event linking the two (linked_at) and while no other lead has been linked
-- to that user (until shared_at): lead_features.sql applies both as known at as_of.
WITH user_leads AS (
    SELECT user_id, canonical_lead_id AS lead_id, min(occurred_at) AS linked_at
    FROM {events}
    WHERE user_id IS NOT NULL AND canonical_lead_id IS NOT NULL
    GROUP BY user_id, canonical_lead_id
), user_links AS (
    SELECT user_id, lead_id, linked_at,
           lead(linked_at) OVER (PARTITION BY user_id ORDER BY linked_at, lead_id) AS shared_at
    FROM user_leads
), user_link AS (
    SELECT user_id, lead_id, linked_at, shared_at
    FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY linked_at, lead_id) AS nth FROM user_links) AS ranked
    WHERE nth = 1
), stream AS (
    SELECT e.canonical_lead_id AS lead_id, e.occurred_at, 'activity' AS kind,
           e.attributes ->> 'activity_type' AS activity_type, e.attributes ->> 'direction' AS direction,
           NULL AS channel, NULL AS campaign_id, NULL AS linked_at, NULL AS shared_at
    FROM {events} AS e
    WHERE e.event_type = 'activity_logged' AND e.canonical_lead_id IS NOT NULL
    UNION ALL
    SELECT e.canonical_lead_id AS lead_id, e.occurred_at, 'stage' AS kind, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {events} AS e
    WHERE e.event_type = 'lead_stage_changed' AND e.canonical_lead_id IS NOT NULL
    UNION ALL
    SELECT coalesce(e.canonical_lead_id, u.lead_id) AS lead_id, e.occurred_at, 'touch' AS kind, NULL, NULL,
           e.attributes ->> 'channel' AS channel, e.attributes ->> 'campaign_id' AS campaign_id,
           CASE WHEN e.canonical_lead_id IS NULL THEN u.linked_at END AS linked_at,
           CASE WHEN e.canonical_lead_id IS NULL THEN u.shared_at END AS shared_at
    FROM {events} AS e
    LEFT JOIN user_link AS u ON u.user_id = e.user_id
    WHERE e.event_type = 'campaign_touch' AND coalesce(e.canonical_lead_id, u.lead_id) IS NOT NULL
)
SELECT lead_id, occurred_at, kind, activity_type, direction, channel, campaign_id, linked_at, shared_at FROM stream
