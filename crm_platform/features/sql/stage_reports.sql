-- Each stage change of a canonical lead, holding from entered_at until the next one (left_at).
SELECT canonical_lead_id AS lead_id, attributes ->> 'to_stage' AS stage, occurred_at AS entered_at,
           lead(occurred_at) OVER (PARTITION BY canonical_lead_id ORDER BY occurred_at, event_id) AS left_at
    FROM {events}
    WHERE event_type = 'lead_stage_changed' AND canonical_lead_id IS NOT NULL
