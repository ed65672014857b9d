-- The data watermark: the latest occurred_at of the data, leaving out the events the platform writes
-- itself ($platform_sources: identity decisions, model scores), which carry the time of the run.
SELECT max(occurred_at) AS data_watermark
FROM {core.events}
WHERE NOT list_contains($platform_sources, source)
