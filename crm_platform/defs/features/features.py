"""features.lead_features and features.lead_labels: point-in-time features and deterministic labels."""

import dagster as dg
import pyarrow as pa

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
from crm_platform.features import checks
from crm_platform.features.config import FeatureConfig
from crm_platform.features.run import build_features
from crm_platform.plan.loader import load_plan

FEATURES = dg.AssetKey(["features", "lead_features"])
LABELS = dg.AssetKey(["features", "lead_labels"])


class FeatureRunConfig(dg.Config):
    full_rebuild: bool = False  # recompute every snapshot (the result is the same as incremental)


def _specs() -> list[dg.AssetSpec]:
    common = {**layer_policies("features"), "group_name": "features", "owners": plan_owners("manual_label"), "kinds": {ENGINE}, "deps": [EVENTS, IDENTITY_MAP]}
    return [
        dg.AssetSpec(FEATURES, description=(
            "One row per canonical lead and as_of (each Monday 00:00 UTC while the lead is open, plus the data "
            "watermark): activities, touches, campaigns and stage changes in the 7/30/90 days before as_of, recency, "
            "stage, open opportunity amount, lead source, estimated value, free-mail e-mail. Only events that occurred "
            "strictly before as_of are read."), **common),
        dg.AssetSpec(LABELS, description=(
            "Converted (an opportunity_closed won) in (as_of, first event + 90 days], per (lead, as_of) whose window "
            "has ended before the data watermark; leads closed before as_of have no row."), **common),
    ]


@dg.multi_asset(specs=_specs(), check_specs=[dg.AssetCheckSpec(
    "no_leakage", asset=FEATURES, blocking=True,
    description="Sampled snapshots recomputed from the events before as_of alone are identical to the stored rows.")],
    pool=warehouse_pool("lead_features"), can_subset=False, description="Point-in-time features and labels.")
@retry_transient
def lead_features(context: dg.AssetExecutionContext, config: FeatureRunConfig, warehouse: WarehouseResource):
    plan, settings = load_plan(), FeatureConfig.load()
    with warehouse.open() as wh:
        run = build_features(wh, plan, settings, full=config.full_rebuild)
        context.log.info(f"features {run.feature_version}: {run.mode}, {len(run.computed)} of {len(run.snapshots)} "
                         f"snapshots computed, {run.feature_rows} rows; labels {run.label_rows} rows")
        lineage = pa.Table.from_pylist(run.lineage)
        yield dg.MaterializeResult(asset_key=FEATURES, metadata={
            **table_metadata(wh, "features", "lead_features", preview_rows=5, order_by="as_of desc, lead_id"),
            "feature_version": run.feature_version,
            "mode": run.mode,
            "snapshots": len(run.snapshots),
            "snapshots_computed": len(run.computed),
            "rows_written": "the days " + " to ".join(map(str, run.replaced_days)) + " (partitions replaced)"
                            if run.replaced_days else "the whole table (rebuilt)",
            "leads_excluded_by_consent": run.leads_excluded_by_consent,
            "leads_recomputed_after_consent": run.leads_refreshed,
            "watermark": str(run.watermark),
            "lineage": dg.MetadataValue.md(markdown_table(lineage, max_cell=90)),
            "seconds": dg.MetadataValue.json(run.seconds),
        })
        balance = wh.fetch_arrow(f"SELECT label, count(*) AS rows FROM {wh.table_name('features', 'lead_labels')} "
                                 "GROUP BY label ORDER BY label")
        yield dg.MaterializeResult(asset_key=LABELS, metadata={
            **table_metadata(wh, "features", "lead_labels", order_by="as_of desc, lead_id"),
            "label_version": run.label_version,
            "label_window_days": settings.labels.window_days,
            "labels": dg.MetadataValue.md(markdown_table(balance)),
        })
        for result in checks.evaluate(wh, plan, settings, computed=run.computed):
            yield check_result(result)
