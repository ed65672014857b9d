-- Each canonical lead's current consent per purpose (the purposes CTE: purpose, granted_by_default): its
-- latest consent_changed event for the purpose (by occurred_at, ties by event_id), given on the
-- lead or on a browser's user_id when that user_id names exactly one lead (attribution's link for
-- anonymous touches; a shared browser's consent binds no lead). No event: the purpose's default.
WITH user_leads AS ({user_leads}
), decisions AS (
    SELECT coalesce(e.canonical_lead_id, u.lead_id) AS lead_id,
           e.attributes ->> 'purpose' AS purpose,
           lower(coalesce(e.attributes ->> 'granted', '')) IN ('true', '1') AS granted,
           CASE WHEN e.canonical_lead_id IS NOT NULL THEN 'lead_id' ELSE 'user_id' END AS linked_by,
           e.occurred_at, e.event_id
    FROM {core.events} AS e
    LEFT JOIN user_leads AS u ON u.user_id = e.user_id
    WHERE e.event_type = 'consent_changed' AND coalesce(e.canonical_lead_id, u.lead_id) IS NOT NULL
), latest AS (
    SELECT lead_id, purpose, granted, linked_by, occurred_at, event_id
    FROM (SELECT *, row_number() OVER (PARTITION BY lead_id, purpose ORDER BY occurred_at DESC, event_id DESC) AS nth
          FROM decisions) AS ranked
    WHERE nth = 1
), leads AS (
    SELECT DISTINCT canonical_lead_id AS lead_id FROM {core.events} WHERE canonical_lead_id IS NOT NULL
), purposes AS (
    {purposes}
)
SELECT l.lead_id AS lead_id, p.purpose AS purpose,
       CASE WHEN d.lead_id IS NULL THEN p.granted_by_default ELSE d.granted END AS granted,
       CASE WHEN d.lead_id IS NULL THEN 'default' ELSE d.linked_by END AS decided_by,
       d.occurred_at AS decided_at, d.event_id AS consent_event_id
FROM leads AS l
CROSS JOIN purposes AS p
LEFT JOIN latest AS d ON d.lead_id = l.lead_id AND d.purpose = p.purpose
