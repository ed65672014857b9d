-- Each reported value of the latest-value attributes, holding from reported_at until the next
-- report of the same attribute (replaced_at).
SELECT lead_id, name, value, reported_at,
           lead(reported_at) OVER (PARTITION BY lead_id, name ORDER BY reported_at, event_id) AS replaced_at
    FROM ({attribute_values}) AS reports
