-- Each canonical lead's life: created at its first event (its lead_created, unless something about
-- it was recorded earlier: a later lead_created must not move a lead's start back in time), closed
-- at its first conversion or its first move into a closed stage.
WITH lead_events AS (
    SELECT canonical_lead_id AS lead_id, min(occurred_at) AS first_event_at
    FROM {events}
    WHERE canonical_lead_id IS NOT NULL AND list_contains($lead_event_types, event_type)
    GROUP BY canonical_lead_id
), closes AS (
    SELECT canonical_lead_id AS lead_id, min(occurred_at) AS closed_at
    FROM {events}
    WHERE canonical_lead_id IS NOT NULL
      AND ((event_type = $label_event_type AND attributes ->> 'outcome' = $label_outcome)
           OR (event_type = 'lead_stage_changed' AND list_contains($closed_stages, attributes ->> 'to_stage')))
    GROUP BY canonical_lead_id
)
SELECT l.lead_id, l.first_event_at AS created_at, c.closed_at,
       row_number() OVER (ORDER BY l.lead_id) AS lead_no  -- batches cut snapshots by ranges of it
FROM lead_events AS l
LEFT JOIN closes AS c ON c.lead_id = l.lead_id
