-- Each canonical lead's stage visits, in order. lead_stage_changed events are ordered by time, then
-- by source trust (source_rank, lower is more trusted: at one instant the most trusted report comes
-- last and wins), ingestion and event id. A visit starts where to_stage differs from the stage the
-- lead was in; a repeated report of the same stage (one move reported by several systems)
-- continues the visit the first report opened (`reports` counts them). The stage the lead started
-- in (the first change's from_stage) is a visit too, entered at the lead's creation (its first
-- lead_created), when that comes no later than the first change.
WITH changes AS (
    SELECT canonical_lead_id, event_id, occurred_at,
           attributes ->> 'from_stage' AS from_stage,
           attributes ->> 'to_stage' AS to_stage,
           row_number() OVER (PARTITION BY canonical_lead_id
                              ORDER BY occurred_at, {source_rank} DESC, ingested_at, event_id) AS change_no
    FROM {core.events}
    WHERE event_type = 'lead_stage_changed' AND canonical_lead_id IS NOT NULL
      AND (attributes ->> 'to_stage') IS NOT NULL
), created AS (
    SELECT canonical_lead_id AS lead_key, min(occurred_at) AS created_at
    FROM {core.events}
    WHERE event_type = 'lead_created' AND canonical_lead_id IS NOT NULL
    GROUP BY canonical_lead_id
), entries AS (
    SELECT f.canonical_lead_id, 0 AS step, f.from_stage AS stage, c.created_at AS entered_at,
           'lead_created' AS entered_via, CAST(NULL AS VARCHAR) AS entering_event_id
    FROM changes AS f
    JOIN created AS c ON c.lead_key = f.canonical_lead_id
    WHERE f.change_no = 1 AND f.from_stage IS NOT NULL AND c.created_at <= f.occurred_at
    UNION ALL
    SELECT canonical_lead_id, change_no, to_stage, occurred_at, 'stage_changed', event_id
    FROM changes
), marked AS (
    SELECT *,
           CASE WHEN lag(stage) OVER (PARTITION BY canonical_lead_id ORDER BY step) IS NOT DISTINCT FROM stage
                THEN 0 ELSE 1 END AS starts_visit
    FROM entries
), numbered AS (
    SELECT *,
           sum(starts_visit) OVER (PARTITION BY canonical_lead_id ORDER BY step
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS visit
    FROM marked
), counted AS (
    SELECT *, count(*) OVER (PARTITION BY canonical_lead_id, visit) AS reports
    FROM numbered
)
SELECT canonical_lead_id, visit, stage, entered_at, entered_via, entering_event_id, reports
FROM counted
WHERE starts_visit = 1
