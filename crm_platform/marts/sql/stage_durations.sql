-- One row per canonical lead and stage visit (stage_visits.sql): when the lead entered the stage,
-- when it left it (the next visit's entry; NULL while it is the current stage), the hours between,
-- and the stage it went to next.
WITH visits AS ({stage_visits}
)
SELECT v.canonical_lead_id AS lead_id, v.visit, v.stage, v.entered_at,
       n.entered_at AS left_at,
       CAST(date_diff('microsecond', v.entered_at, n.entered_at) AS DOUBLE) / 3600000000 AS hours_in_stage,
       n.stage AS next_stage,
       n.canonical_lead_id IS NULL AS is_current,
       v.entered_via, v.reports
FROM visits AS v
LEFT JOIN visits AS n ON n.canonical_lead_id = v.canonical_lead_id AND n.visit = v.visit + 1
