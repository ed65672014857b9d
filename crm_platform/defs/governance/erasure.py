"""governance.erasure_report: erasure requests carried out (crm_platform/governance/erasure.py)."""
import dagster as dg

from crm_platform.defs.conventions import markdown_table, plan_owners, table_metadata, warehouse_asset
from crm_platform.defs.identity.identity_graph import IDENTITY_MAP
from crm_platform.defs.ingest.events import EVENTS, VAULT
from crm_platform.defs.resources import WarehouseResource
from crm_platform.governance.erasure import erase_pending

ERASURE_REPORT = dg.AssetKey(["governance", "erasure_report"])
# What `crm-platform erase` refreshes after an erasure: every layer that read the subject's rows.
DEPENDENTS = "group:identity or group:attribution or group:features or group:scoring or group:marts " \
             "or key:governance/consent_state"


@warehouse_asset(
    "governance", "erasure_report", group="governance", owners=plan_owners("erasure_requested"),
    deps=[EVENTS, VAULT, IDENTITY_MAP],
    description="Erasure: carries out the pending requests (`crm-platform erase`, erasure_requested events): the "
                "person's vault entries, events, quarantined records, source records, identity records, features, "
                "labels, scores and every other row naming them are deleted, a second sweep proves none is left, "
                "models trained on them are flagged in ml.retraining_required. One row per request: counts per "
                "table, models flagged, landing files to purge at the source; nothing that names the person.",
)
def erasure_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.open() as wh:
        result = erase_pending(wh, warehouse.settings().pii_key())
        metadata = table_metadata(wh, "governance", "erasure_report", order_by="erased_at desc, request_id")
        events_left = wh.row_count("core", "events")
    report = result.report
    if result.events_deleted:
        # Like retention: the event log changed, so the layers refreshing on it (eager) see an update.
        yield dg.AssetMaterialization(asset_key=EVENTS, description="A person's events deleted by erasure.", metadata={
            "erasure_deleted": dg.MetadataValue.int(result.events_deleted),
            "dagster/row_count": dg.MetadataValue.int(events_left),
        })
    context.log.info(f"erasure: {result.requests} requests carried out, {result.rows_deleted} rows deleted")
    yield dg.MaterializeResult(metadata={
        **metadata,
        "requests_this_run": dg.MetadataValue.int(result.requests),
        "rows_deleted_this_run": dg.MetadataValue.int(result.rows_deleted),
        "this_run": dg.MetadataValue.md(markdown_table(report.select(
            ["request_id", "reference", "origin", "status", "rows_deleted", "tables", "models_flagged"]),
            max_cell=200) if report.num_rows else "no pending request"),
    })
