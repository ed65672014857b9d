-- Labels per (lead, as_of) of the spine: 1 if the lead converted (a matching close) in
-- (as_of, created_at + window], else 0. A row exists only once that window has ended before the
-- data watermark, and only while the window is still ahead of as_of.
WITH conversions AS (
    SELECT canonical_lead_id AS lead_id, occurred_at
    FROM {events}
    WHERE event_type = $label_event_type AND attributes ->> 'outcome' = $label_outcome AND canonical_lead_id IS NOT NULL
), due AS (
    SELECT s.lead_id, s.as_of, s.created_at + INTERVAL {window_days} DAY AS window_end
    FROM {spine} AS s
    WHERE s.created_at + INTERVAL {window_days} DAY <= $watermark
      AND s.as_of < s.created_at + INTERVAL {window_days} DAY
)
SELECT d.lead_id, d.as_of,
       CASE WHEN count(c.lead_id) > 0 THEN 1 ELSE 0 END AS label,
       {window_days} AS label_window_days, $label_version AS label_version
FROM due AS d
LEFT JOIN conversions AS c ON c.lead_id = d.lead_id AND c.occurred_at > d.as_of AND c.occurred_at <= d.window_end
GROUP BY d.lead_id, d.as_of
