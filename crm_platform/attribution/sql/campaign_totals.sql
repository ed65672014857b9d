-- Conversions and revenue credited per model, channel and campaign.
SELECT model, channel, campaign_id, sum(credit) AS conversions, sum(revenue_credit) AS revenue
FROM {attribution.credits}
GROUP BY model, channel, campaign_id
ORDER BY model, channel, campaign_id
