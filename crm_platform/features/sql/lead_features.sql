-- The features of each (lead, as_of) of the spine whose as_of is in $batch and whose lead_no is in
-- [$lead_from, $lead_to) (a run computes a batch at a time, to bound the engine's memory), from events that occurred strictly
-- before as_of only: the per-run tables (event_stream, stage_reports, attribute_reports,
-- opportunity_reports) are read through intervals that end before as_of. Windows are
-- [as_of - N days, as_of). An anonymous touch counts while its user link holds at as_of.
WITH spine AS (
    SELECT * FROM {spine} WHERE list_contains($batch, as_of) AND lead_no >= $lead_from AND lead_no < $lead_to
), windowed AS (
    -- The pieces name their keys apart (w_lead, w_as_of, ...): ClickHouse calls a key that several
    -- joined pieces share ambiguous.
    SELECT s.lead_id AS w_lead, s.as_of AS w_as_of,
           {window_features}
    FROM spine AS s
    LEFT JOIN {event_stream} AS e
      ON e.lead_id = s.lead_id
     AND e.occurred_at < s.as_of
     AND e.occurred_at >= s.as_of - INTERVAL {longest_days} DAY
     AND (e.linked_at IS NULL OR (e.linked_at < s.as_of AND (e.shared_at IS NULL OR e.shared_at >= s.as_of)))
    GROUP BY s.lead_id, s.as_of
), stage_at AS (
    SELECT s.lead_id AS st_lead, s.as_of AS st_as_of, max(r.stage) AS stage_now, max(r.entered_at) AS stage_entered_at
    FROM spine AS s
    JOIN {stage_reports} AS r
      ON r.lead_id = s.lead_id AND r.entered_at < s.as_of AND (r.left_at IS NULL OR r.left_at >= s.as_of)
    GROUP BY s.lead_id, s.as_of
), attributes_at AS (
    SELECT s.lead_id AS a_lead, s.as_of AS a_as_of,
           {attribute_features}
    FROM spine AS s
    JOIN {attribute_reports} AS r
      ON r.lead_id = s.lead_id AND r.reported_at < s.as_of AND (r.replaced_at IS NULL OR r.replaced_at >= s.as_of)
    GROUP BY s.lead_id, s.as_of
), open_by_source AS (
    -- Systems mirror the same deals under their own ids: per source, then the largest, not the sum.
    SELECT s.lead_id AS ob_lead, s.as_of AS ob_as_of, o.source AS ob_source, sum(o.opportunity_amount) AS source_amount
    FROM spine AS s
    JOIN {opportunity_reports} AS o
      ON o.lead_id = s.lead_id AND o.reported_at < s.as_of AND (o.replaced_at IS NULL OR o.replaced_at >= s.as_of)
    WHERE o.closed_at IS NULL OR o.closed_at >= s.as_of
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
