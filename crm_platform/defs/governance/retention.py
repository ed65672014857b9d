"""governance.deletion_log: the tracking plan's retention enforced, daily at 01:30 UTC."""
from datetime import UTC, datetime

import dagster as dg
import pyarrow.compute as pc

from crm_platform.defs.conventions import (
    markdown_table,
    table_metadata,
    warehouse_asset,
)
from crm_platform.defs.resources import WarehouseResource
from crm_platform.governance.retention import enforce_retention
from crm_platform.plan.loader import load_plan

DELETION_LOG = dg.AssetKey(["governance", "deletion_log"])
EVENTS = dg.AssetKey(["core", "events"])


@warehouse_asset(
    "governance", "deletion_log", group="governance", owners=["team:data_platform"],
    deps=[EVENTS, dg.AssetKey(["core", "quarantine"]), dg.AssetKey(["pii", "vault"])],
    description="Retention: deletes the events older than their type's retention_days (tracking plan), the "
                "quarantined records older than the longest retention with their clear payloads, and the vault "
                "entries only those rows referenced; logs one row per table and event type (or vault field) with "
                "the rows deleted, the cutoff and the plan version. Counts only: no ids, hashes or values.",
)
def deletion_log(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    plan = load_plan()
    with warehouse.open() as wh:
        result = enforce_retention(wh, plan, datetime.now(UTC), run_id=context.run.run_id)
        metadata = table_metadata(wh, "governance", "deletion_log", order_by="run_at desc, table_name, event_type, field")
        events_left = wh.row_count("core", "events")
    for event_type, n in result.unplanned.items():
        context.log.warning(f"{n} events of type {event_type!r}, which the tracking plan does not have, are kept: "
                            "no retention is known for them")
    deleted = result.log.filter(pc.greater(result.log.column("rows_deleted"), 0))
    if result.events_deleted:
        # The events changed: readers of core.events that refresh on their parents' updates (the eager
        # layers) see it as the event log's update; the nightly refresh rebuilds everything anyway.
        yield dg.AssetMaterialization(asset_key=EVENTS, description="Expired events deleted by retention.", metadata={
            "retention_deleted": dg.MetadataValue.int(result.events_deleted),
            "dagster/row_count": dg.MetadataValue.int(events_left),
        })
    yield dg.MaterializeResult(metadata={
        **metadata,
        "run_at": result.run_at.isoformat(sep=" ") + " UTC",
        "plan_version": result.plan_version,
        "events_deleted": dg.MetadataValue.int(result.events_deleted),
        "vault_deleted": dg.MetadataValue.int(result.deleted("pii.vault")),
        "quarantine_deleted": dg.MetadataValue.int(result.deleted("core.quarantine")),
        "deleted_this_run": dg.MetadataValue.md(markdown_table(
            deleted.select(["table_name", "event_type", "field", "retention_days", "cutoff", "rows_deleted"]))
            if deleted.num_rows else "nothing expired"),
        "unplanned_event_types": dg.MetadataValue.json(result.unplanned),
    })


retention_daily = dg.ScheduleDefinition(
    name="retention_daily", cron_schedule="30 1 * * *", execution_timezone="UTC", target=[DELETION_LOG],
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="01:30 UTC, before the 02:00 nightly refresh: retention deletes what expired (governance.deletion_log).",
)
