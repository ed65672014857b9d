-- Each campaign touch with the canonical lead it belongs to. Anonymous touches (a browser's user_id
-- only) join their lead through the user's other events, when those name exactly one lead; a shared
-- browser (one user_id, several leads) stays unattributed rather than guessed. The excluded leads
-- (consent_excluded: for attribution, those without the consent it needs) are left out, their
-- anonymous touches too.
WITH user_leads AS ({user_leads}
), touches AS (
    SELECT t.event_id,
           coalesce(t.canonical_lead_id, u.lead_id) AS lead_id,
           CASE WHEN t.canonical_lead_id IS NOT NULL THEN 'lead_id' WHEN u.lead_id IS NOT NULL THEN 'user_id' END AS linked_by,
           t.attributes ->> 'channel' AS channel,
           t.attributes ->> 'campaign_id' AS campaign_id,
           t.occurred_at
    FROM {core.events} AS t
    LEFT JOIN user_leads AS u ON u.user_id = t.user_id
    WHERE t.event_type = 'campaign_touch'
)
SELECT event_id AS touch_event_id, lead_id, linked_by, channel, campaign_id, occurred_at AS touch_occurred_at
FROM touches
WHERE lead_id IS NOT NULL
  AND lead_id NOT IN ({consent_excluded})
  AND list_contains($channels, channel)
  AND ($all_campaigns OR list_contains($campaigns, coalesce(campaign_id, '')))
  AND NOT list_contains($excluded_campaigns, coalesce(campaign_id, ''))
