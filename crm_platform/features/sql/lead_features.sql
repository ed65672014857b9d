-- The features of each (lead, as_of) of the spine whose as_of is in $batch (a run computes its
-- snapshots a batch at a time, to bound the engine's memory), from events that occurred strictly
-- before as_of only. Windows are [as_of - N days, as_of). A touch without a lead id counts for the lead its
-- browser's user_id names, from the first event linking the two and while no other lead has been
-- linked to that user (both as known at as_of).
WITH spine AS (
    SELECT * FROM {spine} WHERE list_contains($batch, as_of)
), user_leads AS (
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
), activity AS (
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
), windowed AS (
    -- The pieces name their keys apart (w_lead, w_as_of, ...): ClickHouse calls a key that several
    -- joined pieces share ambiguous.
    SELECT s.lead_id AS w_lead, s.as_of AS w_as_of,
           {window_features}
    FROM spine AS s
    LEFT JOIN activity AS e
      ON e.lead_id = s.lead_id
     AND e.occurred_at < s.as_of
     AND e.occurred_at >= s.as_of - INTERVAL {longest_days} DAY
     AND (e.linked_at IS NULL OR (e.linked_at < s.as_of AND (e.shared_at IS NULL OR e.shared_at >= s.as_of)))
    GROUP BY s.lead_id, s.as_of
), stage_reports AS (
    SELECT canonical_lead_id AS lead_id, attributes ->> 'to_stage' AS stage, occurred_at AS entered_at,
           lead(occurred_at) OVER (PARTITION BY canonical_lead_id ORDER BY occurred_at, event_id) AS left_at
    FROM {events}
    WHERE event_type = 'lead_stage_changed' AND canonical_lead_id IS NOT NULL
), stage_at AS (
    SELECT s.lead_id AS st_lead, s.as_of AS st_as_of, max(r.stage) AS stage_now, max(r.entered_at) AS stage_entered_at
    FROM spine AS s
    JOIN stage_reports AS r
      ON r.lead_id = s.lead_id AND r.entered_at < s.as_of AND (r.left_at IS NULL OR r.left_at >= s.as_of)
    GROUP BY s.lead_id, s.as_of
), attribute_reports AS (
    SELECT lead_id, name, value, reported_at,
           lead(reported_at) OVER (PARTITION BY lead_id, name ORDER BY reported_at, event_id) AS replaced_at
    FROM ({attribute_reports}) AS reports
), attributes_at AS (
    SELECT s.lead_id AS a_lead, s.as_of AS a_as_of,
           {attribute_features}
    FROM spine AS s
    JOIN attribute_reports AS r
      ON r.lead_id = s.lead_id AND r.reported_at < s.as_of AND (r.replaced_at IS NULL OR r.replaced_at >= s.as_of)
    GROUP BY s.lead_id, s.as_of
), opportunities AS (
    -- Each report of an opportunity (per source and id) holds until the next one.
    SELECT canonical_lead_id AS lead_id, source, attributes ->> 'opportunity_id' AS opportunity_id,
           occurred_at AS reported_at, try_cast(attributes ->> 'amount' AS DOUBLE) AS opportunity_amount,
           lead(occurred_at) OVER (PARTITION BY canonical_lead_id, source, attributes ->> 'opportunity_id'
                                   ORDER BY occurred_at, event_id) AS replaced_at
    FROM {events}
    WHERE event_type = 'opportunity_created' AND canonical_lead_id IS NOT NULL
), opportunity_closes AS (
    SELECT canonical_lead_id AS lead_id, source, attributes ->> 'opportunity_id' AS opportunity_id,
           min(occurred_at) AS closed_at
    FROM {events}
    WHERE event_type = 'opportunity_closed' AND canonical_lead_id IS NOT NULL
    GROUP BY canonical_lead_id, source, attributes ->> 'opportunity_id'
), open_by_source AS (
    -- Systems mirror the same deals under their own ids: per source, then the largest, not the sum.
    SELECT s.lead_id AS ob_lead, s.as_of AS ob_as_of, o.source AS ob_source, sum(o.opportunity_amount) AS source_amount
    FROM spine AS s
    JOIN opportunities AS o
      ON o.lead_id = s.lead_id AND o.reported_at < s.as_of AND (o.replaced_at IS NULL OR o.replaced_at >= s.as_of)
    LEFT JOIN opportunity_closes AS x
      ON x.lead_id = o.lead_id AND x.source = o.source AND x.opportunity_id = o.opportunity_id
    WHERE x.closed_at IS NULL OR x.closed_at >= s.as_of
    GROUP BY s.lead_id, s.as_of, o.source
), open_amount AS (
    SELECT ob_lead AS oa_lead, ob_as_of AS oa_as_of, max(source_amount) AS amount_open
    FROM open_by_source GROUP BY ob_lead, ob_as_of
), mail AS (
    SELECT pii_hash, list_contains($free_mail_domains, lower(string_split(value, '@')[2])) AS free_mail
    FROM {pii.vault}
    WHERE field = 'attributes.email'
)
SELECT s.lead_id, s.as_of, $feature_version AS feature_version,
       date_diff('second', s.created_at, s.as_of) / 86400.0 AS days_since_created,
       {selected_window_features},
       coalesce(st.stage_now, a.stage_reported, 'new') AS current_stage,
       date_diff('second', coalesce(st.stage_entered_at, s.created_at), s.as_of) / 86400.0 AS days_in_stage,
       coalesce(oa.amount_open, 0.0) AS open_opportunity_amount,
       a.lead_source, a.estimated_value, a.employee_count,
       m.free_mail AS email_free_mail
FROM spine AS s
JOIN windowed AS w ON w.w_lead = s.lead_id AND w.w_as_of = s.as_of
LEFT JOIN stage_at AS st ON st.st_lead = s.lead_id AND st.st_as_of = s.as_of
LEFT JOIN attributes_at AS a ON a.a_lead = s.lead_id AND a.a_as_of = s.as_of
LEFT JOIN open_amount AS oa ON oa.oa_lead = s.lead_id AND oa.oa_as_of = s.as_of
LEFT JOIN mail AS m ON m.pii_hash = a.email_hash
