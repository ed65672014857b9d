-- Each report of an opportunity (per source system and id), holding until the next report of it,
-- with the opportunity's first close in that system.
WITH opportunities AS (
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
)
SELECT o.lead_id, o.source, o.opportunity_id, o.reported_at, o.replaced_at, o.opportunity_amount, x.closed_at
FROM opportunities AS o
LEFT JOIN opportunity_closes AS x
  ON x.lead_id = o.lead_id AND x.source = o.source AND x.opportunity_id = o.opportunity_id
