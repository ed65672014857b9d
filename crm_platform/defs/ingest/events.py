"""The event log: landed event files -> core.events, core.quarantine, core.ingest_ledger, pii.vault."""

import dagster as dg

from crm_platform.defs.conventions import (
    ENGINE,
    check_result,
    column_schema,
    layer_policies,
    markdown_table,
    plan_owners,
    retry_transient,
    table_metadata,
    warehouse_pool,
)
from crm_platform.defs.resources import WarehouseResource
from crm_platform.ingest import checks
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.loader import load_plan

EVENTS = dg.AssetKey(["core", "events"])
QUARANTINE = dg.AssetKey(["core", "quarantine"])
LEDGER = dg.AssetKey(["core", "ingest_ledger"])
VAULT = dg.AssetKey(["pii", "vault"])
KEYS = (EVENTS, QUARANTINE, LEDGER, VAULT)


def _spec(key: dg.AssetKey, description: str, owners=("team:data_platform",)) -> dg.AssetSpec:
    return dg.AssetSpec(key, group_name="ingest", description=description, owners=list(owners), kinds={ENGINE},
                        **layer_policies("ingest"))


def _specs() -> list[dg.AssetSpec]:
    # Built in a function: the defs loader collects module-level AssetSpecs as definitions of their own.
    return [
        _spec(
            EVENTS,
            "Every accepted event, once (unique event_id), normalized: UTC occurred_at with its original "
            "offset, properties in `attributes` upgraded to the current schema_version, PII replaced by "
            "keyed hashes. canonical_lead_id equals lead_id until the identity graph fills it.",
            owners=list(dict.fromkeys(["team:data_platform", *plan_owners()])),  # the platform, each type's owner
        ),
        _spec(
            QUARANTINE,
            "Every rejected record with its reasons (redacted; the clear payload for replay is in "
            "pii.quarantine_payloads).",
        ),
        _spec(
            LEDGER,
            "One row per landed file content: records_read = events_accepted + events_duplicate + "
            "records_quarantined; status partial with the error when a file ends early.",
        ),
        _spec(
            VAULT,
            "Clear PII values by keyed hash (HMAC-SHA256 with CRM_PII_KEY): the only place they live.",
            owners=plan_owners("consent_changed"),  # who answers for personal data
        ),
    ]


def _checks() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "ledger_balanced",
            asset=LEDGER,
            blocking=True,
            description="records_read = accepted + duplicate + quarantined for every file.",
        ),
        dg.AssetCheckSpec(
            "unique_event_id", asset=EVENTS, blocking=True, description="No event_id twice in core.events."
        ),
        dg.AssetCheckSpec(
            "quarantine_rate",
            asset=QUARANTINE,
            description=f"WARN when a file quarantines more than {checks.QUARANTINE_RATE_THRESHOLD:.0%} of its records.",
        ),
        dg.AssetCheckSpec(
            "no_future_events", asset=EVENTS, description="WARN on events dated more than a day after their ingestion."
        ),
    ]


@dg.multi_asset(
    specs=_specs(),
    check_specs=_checks(),
    pool=warehouse_pool("event_log"),
    can_subset=False,
    description="Ingest every landed file version not seen before: canonical events (landing/events/**), "
                "Debezium change streams (landing/cdc/) and CRM exports (landing/batch/), each source by its "
                "mapping (crm_platform/sources/mappings/), all through one validation, quarantine and ledger.",
)
@retry_transient
def event_log(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = warehouse.settings()
    plan = load_plan()

    def on_file(outcome) -> None:
        context.log.info(
            f"{outcome.source_file}: {outcome.status}, {outcome.records_read} read, "
            f"{outcome.events_accepted} accepted, {outcome.events_duplicate} duplicate, "
            f"{outcome.records_quarantined} quarantined" + (f" ({outcome.error})" if outcome.error else "")
        )

    with warehouse.open() as wh:
        outcomes = ingest_landing(wh, settings.landing_dir, plan, settings.pii_key(), on_file=on_file)
        run_files = markdown_table(checks.outcomes_table(outcomes)) if outcomes else "no new file"
        yield dg.MaterializeResult(
            asset_key=EVENTS,
            metadata={
                **table_metadata(wh, "core", "events", order_by="event_date desc, event_id"),
                "files_this_run": dg.MetadataValue.md(run_files),
                "events_by_type": dg.MetadataValue.md(markdown_table(checks.events_by_type(wh))),
                "plan_version": plan.version,
            },
        )
        yield dg.MaterializeResult(
            asset_key=QUARANTINE,
            metadata={
                **table_metadata(wh, "core", "quarantine", order_by="quarantined_at desc, source_file, source_line"),
                "reasons": dg.MetadataValue.md(markdown_table(checks.quarantine_reasons(wh))),
            },
        )
        yield dg.MaterializeResult(
            asset_key=LEDGER,
            metadata={
                **table_metadata(wh, "core", "ingest_ledger", order_by="finished_at desc, source_file"),
                "per_file": dg.MetadataValue.md(markdown_table(checks.ledger_per_file(wh))),
            },
        )
        yield dg.MaterializeResult(
            asset_key=VAULT,
            metadata={
                # No preview: the vault holds clear values. Its columns and counts only.
                "dagster/row_count": dg.MetadataValue.int(wh.row_count("pii", "vault")),
                "dagster/column_schema": column_schema(wh.fetch_arrow(f"select * from {wh.table_name('pii', 'vault')} limit 0")),
                "dagster/table_name": "pii.vault",
                "values_by_field": dg.MetadataValue.md(markdown_table(checks.vault_by_field(wh))),
            },
        )
        for result in checks.evaluate(wh):
            yield check_result(result)
