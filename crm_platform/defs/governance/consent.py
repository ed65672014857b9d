"""governance.consent_state: each canonical lead's current consent per purpose (crm_platform/governance/consent.py).

The layers it gates (attribution, features, scoring) evaluate the same SQL inline in their own runs,
so they never read a stale copy; this table is what people and dashboards look at."""
import dagster as dg

from crm_platform.defs.conventions import (
    markdown_table,
    plan_owners,
    table_metadata,
    warehouse_asset,
)
from crm_platform.defs.identity.identity_graph import IDENTITY_MAP
from crm_platform.defs.ingest.events import EVENTS
from crm_platform.defs.resources import WarehouseResource
from crm_platform.governance.consent import ConsentConfig, build_consent_state


@warehouse_asset(
    "governance", "consent_state", group="governance", owners=plan_owners("consent_changed"), deps=[EVENTS, IDENTITY_MAP],
    description="One row per canonical lead and consent purpose: granted or not, by the latest consent_changed "
                "event (occurred_at, then event_id) given on the lead or on a browser's user_id naming only that "
                "lead, else the purpose's default. crm_platform/governance/consent.yaml says which purpose gates "
                "which layer: without analytics consent a lead leaves attribution and features, without "
                "profiling consent it is not scored, history included; it returns once consent is given again.",
)
def consent_state(warehouse: WarehouseResource) -> dg.MaterializeResult:
    config = ConsentConfig.load()
    with warehouse.open() as wh:
        counts = build_consent_state(wh, config)
        metadata = table_metadata(wh, "governance", "consent_state", order_by="lead_id, purpose")
        by_purpose = wh.fetch_arrow(
            f"select purpose, decided_by, granted, count(*) leads from {wh.table_name('governance', 'consent_state')} "
            "group by purpose, decided_by, granted order by purpose, decided_by, granted")
    return dg.MaterializeResult(metadata={
        **metadata,
        "leads_by_purpose": dg.MetadataValue.md(markdown_table(by_purpose)),
        "gates": dg.MetadataValue.json(config.to_dict()),
        "denied": dg.MetadataValue.json({purpose: c["denied"] for purpose, c in counts.items()}),
    })
