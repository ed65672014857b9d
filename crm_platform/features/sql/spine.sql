-- (lead, as_of) rows: every snapshot at which the lead was open as far as anyone could know at
-- as_of: created strictly before it, and not closed strictly before it; a lead without the consent
-- the features need (consent_excluded) has none.
SELECT l.lead_id, s.as_of, l.created_at, l.closed_at, l.lead_no
FROM {lifecycle} AS l
CROSS JOIN {snapshots} AS s
WHERE l.created_at < s.as_of AND (l.closed_at IS NULL OR l.closed_at >= s.as_of)
  AND l.lead_id NOT IN (SELECT lead_id FROM {consent_excluded})
