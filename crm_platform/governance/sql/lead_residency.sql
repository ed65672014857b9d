-- Each lead's data residency zone: the zone of its newest event (occurred_at, then event_id) with a
-- signal of its own, an explicit known tag or a mapped country (crm_platform/governance/residency.py).
-- Leads without such an event are absent: their zone is the default.
-- {lead_key}: the lead an event counts for (canonical, or as sent); {own_zone}: rules 1-2 over
-- attributes and context; {signal}: a text prefilter that spares the JSON parse of most events;
-- {where}: which events.
SELECT lead_key AS lead_id, zone, occurred_at, event_id
FROM (
    SELECT lead_key, zone, occurred_at, event_id,
           row_number() OVER (PARTITION BY lead_key ORDER BY occurred_at DESC, event_id DESC) AS rn
    FROM (
        SELECT {lead_key} AS lead_key, {own_zone} AS zone, occurred_at, event_id
        FROM {core.events}
        WHERE {lead_key} IS NOT NULL AND {signal} AND ({where})
    ) AS signals
    WHERE zone IS NOT NULL
) AS ranked
WHERE rn = 1
