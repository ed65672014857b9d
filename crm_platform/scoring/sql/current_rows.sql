-- The open leads at the latest as_of (the data watermark): the rows to score, but for the leads
-- without the consent scoring needs (consent_excluded).
SELECT f.*
FROM {features.lead_features} AS f
WHERE f.as_of = (SELECT max(as_of) FROM {features.lead_features})
  AND f.lead_id NOT IN ({consent_excluded})
ORDER BY f.lead_id
