"""Campaign spend as it stands now, from the event log.

The marketing spend export lands as `campaign_spend_reported` events (mapping
`sources/mappings/marketing_campaign_spend.yaml`): one per campaign and day when first reported, and
one more each time a later export restates that day. Each event carries the whole record (the
mapping's `updates: full`), so the current value of a (campaign, day) is its latest event: the one
reported last (`occurred_at` is the export's as-of instant), ties broken by ingestion and event id,
so the choice is deterministic. Spend events are about no person (`identity: none`): any lead_id
on them is ignored here.
"""
from __future__ import annotations

from crm_platform.warehouse import Warehouse

SPEND_EVENT = "campaign_spend_reported"

# One row per (campaign_id, spend_date), in this order and with these types on both engines.
CURRENT_SPEND_COLUMNS = ("spend_date", "channel", "campaign_id", "campaign_name", "spend", "currency",
                         "impressions", "clicks")


def current_spend_sql(wh: Warehouse) -> str:
    """DuckDB-dialect SELECT of the latest reported spend per (campaign_id, spend_date): spend_date DATE,
    channel, campaign_id, campaign_name, spend DOUBLE, currency, impressions BIGINT, clicks BIGINT,
    ordered by spend_date, campaign_id. Runs on ClickHouse as the warehouse transpiles it."""
    events = wh.table_name("core", "events")
    # spend_date is a timestamp property (midnight UTC of the day); its date is the text's first ten
    # characters, which reads the same on both engines (ClickHouse's JSON is text). Integers go through
    # DOUBLE: the plan accepts an integral 12.0 or 1E2, which ClickHouse will not cast to Int64 directly.
    day = "CAST(substring(attributes ->> 'spend_date', 1, 10) AS DATE)"
    return f"""
SELECT spend_date,
       attributes ->> 'channel' AS channel,
       campaign_id,
       attributes ->> 'campaign_name' AS campaign_name,
       CAST(attributes ->> 'spend' AS DOUBLE) AS spend,
       attributes ->> 'currency' AS currency,
       CAST(CAST(attributes ->> 'impressions' AS DOUBLE) AS BIGINT) AS impressions,
       CAST(CAST(attributes ->> 'clicks' AS DOUBLE) AS BIGINT) AS clicks
FROM (
    SELECT attributes, {day} AS spend_date, attributes ->> 'campaign_id' AS campaign_id,
           row_number() OVER (PARTITION BY attributes ->> 'campaign_id', {day}
                              ORDER BY occurred_at DESC, ingested_at DESC, event_id DESC) AS report_rank
    FROM {events}
    WHERE event_type = '{SPEND_EVENT}'
) AS reports
WHERE report_rank = 1 AND campaign_id IS NOT NULL AND spend_date IS NOT NULL
ORDER BY spend_date, campaign_id"""
