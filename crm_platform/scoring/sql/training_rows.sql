-- Features joined to their labels: the rows a model learns from, in a stable order; leads without
-- the consent scoring needs (consent_excluded) are not learnt from.
SELECT f.*, l.label AS label, l.label_version AS label_version
FROM {features.lead_features} AS f
JOIN {features.lead_labels} AS l ON l.lead_id = f.lead_id AND l.as_of = f.as_of
WHERE f.lead_id NOT IN ({consent_excluded})
ORDER BY f.as_of, f.lead_id
