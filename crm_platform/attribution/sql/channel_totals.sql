-- Conversions and revenue credited per model and channel.
SELECT model, channel, sum(credit) AS conversions, sum(revenue_credit) AS revenue
FROM {attribution.credits}
GROUP BY model, channel
ORDER BY model, channel
