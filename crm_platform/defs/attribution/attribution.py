"""attribution.credits, attribution.summary and attribution.campaign_summary: eight models side by side."""

import base64
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pyarrow as pa

from crm_platform.attribution import checks
from crm_platform.attribution.charts import conversions_by_channel_png
from crm_platform.attribution.config import MODELS, AttributionConfig
from crm_platform.attribution.run import run_attribution
from crm_platform.defs.conventions import (
    ENGINE,
    check_result,
    layer_policies,
    markdown_table,
    plan_owners,
    retry_transient,
    table_metadata,
    warehouse_pool,
)
from crm_platform.defs.identity.identity_graph import IDENTITY_MAP
from crm_platform.defs.ingest.events import EVENTS
from crm_platform.defs.resources import WarehouseResource
from crm_platform.plan.loader import load_plan

CREDITS = dg.AssetKey(["attribution", "credits"])
SUMMARY = dg.AssetKey(["attribution", "summary"])
CAMPAIGN_SUMMARY = dg.AssetKey(["attribution", "campaign_summary"])


class AttributionRunConfig(dg.Config):
    config_file: str | None = None  # an attribution.yaml of the user's (default: the platform's)
    bootstrap_replicates: int | None = None  # overrides bootstrap.replicates (0: no intervals)


def _specs() -> list[dg.AssetSpec]:
    common = {**layer_policies("attribution"), "group_name": "attribution", "owners": plan_owners("campaign_touch", "campaign_spend_reported"), "kinds": {ENGINE},
              "deps": [EVENTS, IDENTITY_MAP]}
    return [
        dg.AssetSpec(CREDITS, description=(
            "One row per (model, conversion, touch): first_touch, last_touch, linear, position_based, time_decay, "
            "markov, shapley, logistic_regression. Touches are the canonical lead's campaign_touch events in the "
            "lookback window; a conversion without one is credited to `direct`. Each model's credits for a "
            "conversion sum to 1, its revenue credits to the conversion's revenue."), **common),
        dg.AssetSpec(SUMMARY, description=(
            "Conversions and revenue per model and channel, with bootstrap intervals, spend, cost per conversion "
            "and ROAS. Markov: total conversions x removal effect / sum of removal effects (CONTRACT §7)."), **common),
        dg.AssetSpec(CAMPAIGN_SUMMARY, description=(
            "Conversions, revenue, spend, cost per conversion and ROAS per model, channel and campaign."), **common),
    ]


def _checks() -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("credits_sum_to_conversions", asset=CREDITS, blocking=True,
                              description="Each model's credits for every conversion sum to 1, revenue credits to its revenue.")]


@dg.multi_asset(specs=_specs(), check_specs=_checks(), pool=warehouse_pool("attribution_models"), can_subset=False,
                description="Attribute conversions to channels and campaigns with eight models.")
@retry_transient
def attribution_models(context: dg.AssetExecutionContext, config: AttributionRunConfig, warehouse: WarehouseResource):
    settings = AttributionConfig.load(Path(config.config_file) if config.config_file else None)
    if config.bootstrap_replicates is not None:
        settings = replace(settings, bootstrap=replace(settings.bootstrap, replicates=config.bootstrap_replicates))
    with warehouse.open() as wh:
        run = run_attribution(wh, load_plan(), settings)
        context.log.info(f"attribution: {run.counts['conversions']} conversions, {run.counts['touches']} touches, "
                         f"{run.counts['credits']} credits in {sum(run.seconds.values()):.1f} s")
        png = base64.b64encode(conversions_by_channel_png(run.summary, MODELS)).decode()
        by_model = run.summary.pivot(index="channel", columns="model", values="conversions").reindex(columns=list(MODELS))
        table = pa.Table.from_pandas(by_model.round(1).reset_index(), preserve_index=False)
        yield dg.MaterializeResult(asset_key=CREDITS, metadata={
            **table_metadata(wh, "attribution", "credits", order_by="model, conversion_event_id, touch_occurred_at"),
            **{k: dg.MetadataValue.int(v) for k, v in run.counts.items()},
            "seconds": dg.MetadataValue.json(run.seconds),
        })
        yield dg.MaterializeResult(asset_key=SUMMARY, metadata={
            **table_metadata(wh, "attribution", "summary", preview_rows=0),
            "conversions_by_channel": dg.MetadataValue.md(f"![conversions by channel](data:image/png;base64,{png})"),
            "conversions_by_model": dg.MetadataValue.md(markdown_table(table)),
            "markov_removal_effects": dg.MetadataValue.json({k: round(v, 6) for k, v in run.removal_effects.items()}),
            "bootstrap_replicates": settings.bootstrap.replicates,
        })
        yield dg.MaterializeResult(asset_key=CAMPAIGN_SUMMARY, metadata=table_metadata(
            wh, "attribution", "campaign_summary", order_by="model, conversions desc"))
        for result in checks.evaluate(wh):
            yield check_result(result)
