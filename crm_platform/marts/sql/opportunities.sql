-- Opportunities per canonical lead, one row per deal. One deal often arrives from several systems,
-- each with its own opportunity id (the CRM's API, its change stream, the nightly export): as for
-- conversions (attribution/sql/conversions.sql), a lead's opportunity_created events closer than
-- $dedupe_seconds to the previous one are one deal, valued by the most trusted source that gives an
-- amount. A deal is closed when an opportunity_closed of the lead names one of its opportunity ids
-- (won or lost); otherwise it is open.
WITH created AS (
    SELECT canonical_lead_id, event_id, occurred_at,
           attributes ->> 'opportunity_id' AS opportunity_id,
           try_cast(attributes ->> 'amount' AS DOUBLE) AS amount,
           {source_rank} AS source_rank
    FROM {core.events}
    WHERE event_type = 'opportunity_created' AND canonical_lead_id IS NOT NULL
      AND (attributes ->> 'opportunity_id') IS NOT NULL
), closed AS (
    SELECT DISTINCT canonical_lead_id AS closed_lead_id, attributes ->> 'opportunity_id' AS closed_opportunity_id
    FROM {core.events}
    WHERE event_type = 'opportunity_closed' AND canonical_lead_id IS NOT NULL
      AND (attributes ->> 'opportunity_id') IS NOT NULL
), gaps AS (
    SELECT *,
           CASE WHEN lag(occurred_at) OVER (PARTITION BY canonical_lead_id ORDER BY occurred_at, event_id) IS NULL
                  OR date_diff('second', lag(occurred_at) OVER (PARTITION BY canonical_lead_id ORDER BY occurred_at, event_id),
                               occurred_at) > $dedupe_seconds
                THEN 1 ELSE 0 END AS starts_deal
    FROM created
), deals AS (
    SELECT *,
           sum(starts_deal) OVER (PARTITION BY canonical_lead_id ORDER BY occurred_at, event_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS deal
    FROM gaps
), marked AS (
    SELECT d.canonical_lead_id, d.deal, d.occurred_at, d.amount,
           CASE WHEN k.closed_opportunity_id IS NULL THEN 0 ELSE 1 END AS report_closed,
           row_number() OVER (PARTITION BY d.canonical_lead_id, d.deal
                              ORDER BY CASE WHEN d.amount IS NULL THEN 1 ELSE 0 END, d.source_rank,
                                       d.occurred_at, d.event_id) AS amount_pick
    FROM deals AS d
    LEFT JOIN closed AS k ON k.closed_lead_id = d.canonical_lead_id AND k.closed_opportunity_id = d.opportunity_id
)
SELECT canonical_lead_id, deal, min(occurred_at) AS opened_at,
       max(CASE WHEN amount_pick = 1 THEN amount END) AS deal_amount,
       max(report_closed) AS deal_closed, count(*) AS reports
FROM marked
GROUP BY canonical_lead_id, deal
