"""governance.tracking_plan: the tracking plan published into the warehouse."""
import dagster as dg

from crm_platform.defs.conventions import markdown_table, table_metadata, warehouse_asset
from crm_platform.defs.resources import WarehouseResource
from crm_platform.governance.plan_catalog import catalog_table
from crm_platform.plan.loader import load_plan


@warehouse_asset(
    "governance", "tracking_plan", group="governance", owners=["team:data_platform"],
    description="The tracking plan (crm_platform/plan/) as a table: one row per event type, schema version "
                "and property, with type, required, PII tag, owner, allowed sources, consent purpose and "
                "retention. Its plan_version is the content hash recorded with everything validated against it.",
    code_version=load_plan().version,
)
def tracking_plan(warehouse: WarehouseResource) -> dg.MaterializeResult:
    plan = load_plan()
    table = catalog_table(plan)
    with warehouse.open() as wh:
        wh.replace_table("governance", "tracking_plan", table)
        metadata = table_metadata(wh, "governance", "tracking_plan", order_by="event_type, schema_version, property")
        pii = wh.fetch_arrow(
            f"select event_type, string_agg(distinct property, ', ' order by property) pii_properties, "
            f"any_value(retention_days) retention_days from {wh.table_name('governance', 'tracking_plan')} "
            "where pii and is_current group by event_type order by event_type")
    return dg.MaterializeResult(metadata={
        **metadata,
        "plan_version": plan.version,
        "event_types": len(plan.event_types),
        "pii_properties": dg.MetadataValue.md(markdown_table(pii)),
    })
