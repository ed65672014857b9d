-- Leads aggregated by the set of channels that touched them (a bit set): how many leads, how many
-- converted. A converted lead counts with its first conversion's window, an unconverted one with its
-- null window, a lead never touched with the empty set. Shapley's coalition values and the
-- regression's training rows, at most 2^channels of them. Leads without the consent attribution
-- needs (consent_excluded) are not counted.
WITH conversions AS (
    SELECT DISTINCT lead_id, conversion_event_id, conversion_at, channel_set FROM {attribution.conversion_touches}
), ordered AS (
    SELECT *, row_number() OVER (PARTITION BY lead_id ORDER BY conversion_at, conversion_event_id) AS nth
    FROM conversions
), converted AS (
    SELECT lead_id, max(CASE WHEN nth = 1 THEN channel_set END) AS channel_set FROM ordered GROUP BY lead_id
), unconverted AS (
    SELECT lead_id, bit_or(bit) AS channel_set FROM {attribution.null_touches} GROUP BY lead_id
), leads AS (
    SELECT DISTINCT canonical_lead_id AS lead_id FROM {core.events}
    WHERE canonical_lead_id IS NOT NULL AND canonical_lead_id NOT IN (SELECT lead_id FROM {attribution.consent_excluded})
    UNION DISTINCT
    SELECT lead_id FROM {attribution.touches}
)
SELECT coalesce(c.channel_set, u.channel_set, 0) AS channel_set, count(*) AS leads,
       count(c.lead_id) AS converted_leads
FROM leads AS l
LEFT JOIN converted AS c ON c.lead_id = l.lead_id
LEFT JOIN unconverted AS u ON u.lead_id = l.lead_id
GROUP BY 1
ORDER BY 1
