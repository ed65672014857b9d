-- Conversions per canonical lead. One deal often arrives from several systems (the CRM's API, its
-- change stream, the nightly export), each with its own event and opportunity id: a lead's matching
-- events closer than $dedupe_seconds to the previous one are one conversion, represented by the
-- event of the most trusted source (`{source_rank}`, lower is better) and valued by the first
-- source that gives a value. Leads without the consent attribution needs (consent_excluded) are left out.
WITH matching AS (
    SELECT event_id, canonical_lead_id AS lead_id, occurred_at, source,
           attributes ->> 'opportunity_id' AS opportunity_id,
           try_cast(attributes ->> $value_property AS DOUBLE) AS value,
           {source_rank} AS source_rank
    FROM {core.events}
    WHERE event_type = $event_type AND canonical_lead_id IS NOT NULL AND {where}
      AND canonical_lead_id NOT IN (SELECT lead_id FROM {attribution.consent_excluded})
), gaps AS (
    SELECT *,
           CASE WHEN lag(occurred_at) OVER (PARTITION BY lead_id ORDER BY occurred_at, event_id) IS NULL
                  OR date_diff('second', lag(occurred_at) OVER (PARTITION BY lead_id ORDER BY occurred_at, event_id),
                               occurred_at) > $dedupe_seconds
                THEN 1 ELSE 0 END AS starts_deal
    FROM matching
), deals AS (
    SELECT *,
           sum(starts_deal) OVER (PARTITION BY lead_id ORDER BY occurred_at, event_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS deal
    FROM gaps
), ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY lead_id, deal ORDER BY source_rank, occurred_at, event_id) AS pick,
           row_number() OVER (PARTITION BY lead_id, deal
                              ORDER BY CASE WHEN value IS NULL THEN 1 ELSE 0 END, source_rank, occurred_at, event_id) AS value_pick,
           min(occurred_at) OVER (PARTITION BY lead_id, deal) AS first_reported_at,
           count(*) OVER (PARTITION BY lead_id, deal) AS reports
    FROM deals
)
SELECT r.event_id AS conversion_event_id, r.lead_id, r.first_reported_at AS conversion_at,
       coalesce(v.value, 0.0) AS revenue, r.source, r.opportunity_id, r.reports
FROM ranked AS r
JOIN ranked AS v ON v.lead_id = r.lead_id AND v.deal = r.deal AND v.value_pick = 1
WHERE r.pick = 1
