SELECT b.lead_id, b.model_version, b.as_of, b.score, b.tier, b.scored_at, b.top_features
FROM {ml.lead_scores_batch} AS b
