"""The attribution tables. Outputs: `credits` and `summary` (CONTRACT §6), `campaign_summary`,
`model_parameters`. Intermediate (rebuilt every run, kept to inspect a result): `channels`,
`consent_excluded`, `touches`, `conversions`, `conversion_touches`, `null_touches`, `channel_shares`."""
from __future__ import annotations

import pyarrow as pa

from crm_platform.warehouse.tables import TableDef

SCHEMA = "attribution"

TOUCHES = TableDef(SCHEMA, "touches", (
    ("touch_event_id", "string"), ("lead_id", "string"), ("linked_by", "string"), ("channel", "string"),
    ("campaign_id", "string"), ("touch_occurred_at", "timestamp"),
), order_by=("lead_id", "touch_occurred_at"), low_cardinality=("linked_by", "channel", "campaign_id"),
    description="Campaign touches by canonical lead; anonymous ones linked through their user_id.")

CONVERSIONS = TableDef(SCHEMA, "conversions", (
    ("conversion_event_id", "string"), ("lead_id", "string"), ("conversion_at", "timestamp"), ("revenue", "double"),
    ("source", "string"), ("opportunity_id", "string"), ("reports", "bigint"),
), order_by=("lead_id", "conversion_at"), low_cardinality=("source",),
    description="One row per conversion (a deal reported by several systems counts once).")

CONVERSION_TOUCHES = TableDef(SCHEMA, "conversion_touches", (
    ("conversion_event_id", "string"), ("lead_id", "string"), ("conversion_at", "timestamp"), ("revenue", "double"),
    ("touch_event_id", "string"), ("channel", "string"), ("campaign_id", "string"), ("touch_occurred_at", "timestamp"),
    ("age_days", "double"), ("touch_index", "bigint"), ("touches", "bigint"), ("channel_touches", "bigint"),
    ("channel_set", "bigint"),
), order_by=("conversion_event_id", "touch_index"), low_cardinality=("channel", "campaign_id"),
    description="Each conversion with the touches of its lookback window (or one `direct` row without a touch).")

NULL_TOUCHES = TableDef(SCHEMA, "null_touches", (
    ("lead_id", "string"), ("touch_event_id", "string"), ("channel", "string"), ("touch_occurred_at", "timestamp"),
    ("bit", "bigint"),
), order_by=("lead_id", "touch_occurred_at"), low_cardinality=("channel",),
    description="Touches of never-converted leads in the window ending at their last touch.")

CREDITS = TableDef(SCHEMA, "credits", (
    ("model", "string"), ("conversion_event_id", "string"), ("lead_id", "string"), ("touch_event_id", "string"),
    ("channel", "string"), ("campaign_id", "string"), ("touch_occurred_at", "timestamp"), ("credit", "double"),
    ("revenue_credit", "double"),
), order_by=("model", "conversion_event_id", "touch_occurred_at"), low_cardinality=("model", "channel", "campaign_id"),
    description="One row per (model, conversion, touch) with credit; each model's credits for a conversion sum to 1.")

CONSENT_EXCLUDED = TableDef(SCHEMA, "consent_excluded", (("lead_id", "string"),), order_by=("lead_id",),
                            description="Canonical leads left out for want of a consent that gates attribution "
                                        "(crm_platform/governance/consent.yaml), as of this run.")

S, F, I = pa.string(), pa.float64(), pa.int64()
CHANNELS = pa.schema([("channel", S), ("bit", I)])
CHANNEL_SHARES = pa.schema([("model", S), ("channel_set", I), ("channel", S), ("share", F)])
SUMMARY = pa.schema([
    ("model", S), ("channel", S), ("conversions", F), ("revenue", F), ("conversions_low", F), ("conversions_high", F),
    ("revenue_low", F), ("revenue_high", F), ("share_of_conversions", F), ("spend", F), ("cost_per_conversion", F),
    ("roas", F)])
CAMPAIGN_SUMMARY = pa.schema([
    ("model", S), ("channel", S), ("campaign_id", S), ("conversions", F), ("revenue", F), ("spend", F),
    ("cost_per_conversion", F), ("roas", F)])
MODEL_PARAMETERS = pa.schema([("model", S), ("channel", S), ("parameter", S), ("value", F)])
