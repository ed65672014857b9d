-- ml.lead_scores with one (model_version, as_of) batch replaced: earlier rows carried over, the
-- batch's rows keep the scored_at of an identical earlier score (a rerun changes nothing). Earlier
-- scores of a lead without the consent scoring needs (consent_excluded) are dropped.
SELECT s.lead_id, s.model_version, s.as_of, s.score, s.tier, s.scored_at, s.top_features
FROM {ml.lead_scores} AS s
WHERE NOT (s.model_version = $model_version AND s.as_of = $as_of)
  AND s.lead_id NOT IN ({consent_excluded})
UNION ALL
SELECT b.lead_id, b.model_version, b.as_of, b.score, b.tier,
       CASE WHEN o.score = b.score AND o.tier = b.tier THEN o.scored_at ELSE b.scored_at END AS scored_at,
       b.top_features
FROM {ml.lead_scores_batch} AS b
LEFT JOIN (SELECT lead_id, score, tier, scored_at FROM {ml.lead_scores}
           WHERE model_version = $model_version AND as_of = $as_of) AS o ON o.lead_id = b.lead_id
