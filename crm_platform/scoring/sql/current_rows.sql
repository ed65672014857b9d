-- The open leads at the latest as_of (the data watermark): the rows to score.
SELECT f.*
FROM {features.lead_features} AS f
WHERE f.as_of = (SELECT max(as_of) FROM {features.lead_features})
ORDER BY f.lead_id
