-- Each canonical lead's data residency zone from the ingest's signal index: the zone of the newest
-- signal (occurred_at, then event_id) of any of its records, which is lead_residency.sql by
-- canonical lead without reading the events' text. A canonical id is a function of the lead id
-- (the identity graph sets it per record), so the events give the mapping.
-- {canonical_lead}: the lead an event counts for.
SELECT lead_id, zone, occurred_at, event_id
FROM (
    SELECT m.canonical AS lead_id, s.zone, s.occurred_at, s.event_id,
           row_number() OVER (PARTITION BY m.canonical ORDER BY s.occurred_at DESC, s.event_id DESC) AS rn
    FROM {core.residency_signals} AS s
    JOIN (SELECT DISTINCT lead_id, {canonical_lead} AS canonical
          FROM {core.events} WHERE lead_id IS NOT NULL) AS m ON m.lead_id = s.lead_id
) AS ranked
WHERE rn = 1
