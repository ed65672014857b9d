"""The marts: the tables analysts' dashboards run on, one asset each (crm_platform/marts/)."""

import dagster as dg

from crm_platform.defs.attribution.attribution import CAMPAIGN_SUMMARY, SUMMARY
from crm_platform.defs.conventions import (
    DAILY,
    markdown_table,
    partition_days,
    plan_owners,
    table_metadata,
    warehouse_asset,
)
from crm_platform.defs.identity.identity_graph import IDENTITY_MAP
from crm_platform.defs.ingest.events import EVENTS
from crm_platform.defs.resources import WarehouseResource
from crm_platform.marts import checks
from crm_platform.marts.build import build_mart
from crm_platform.marts.summaries import PREVIEW_ORDER, summary
from crm_platform.plan.loader import load_plan

# Scored by the scoring layer; read when it exists (until then the score columns are NULL).
LEAD_SCORES = dg.AssetKey(["ml", "lead_scores"])
# Owners from the tracking plan: the lead lifecycle's team, and the campaigns' team.
REVENUE = plan_owners("lead_created", "lead_stage_changed", "opportunity_created", "opportunity_closed")
MARKETING = plan_owners("campaign_touch", "campaign_spend_reported")


def _materialize(context: dg.AssetExecutionContext, warehouse: WarehouseResource, name: str, evaluate=None):
    plan = load_plan()
    days = partition_days(context)
    with warehouse.open() as wh:
        built = build_mart(wh, name, plan, days=days)
        if days:
            context.log.info(f"marts.{name}: {built.rows} rows written for {days[0]} to {days[1]} (exclusive)")
        if built.missing:
            context.log.info(f"marts.{name}: built without {', '.join(built.missing)} (NULL columns)")
        label, table = summary(wh, name)
        yield dg.MaterializeResult(metadata={
            **table_metadata(wh, "marts", name, order_by=PREVIEW_ORDER[name]),
            label: dg.MetadataValue.md(markdown_table(table)),
            "missing_inputs": dg.MetadataValue.json(built.missing),
        })
        for result in (evaluate(wh, plan, days) if evaluate else ()):
            yield dg.AssetCheckResult(check_name=result.name, passed=result.passed,
                                      severity=dg.AssetCheckSeverity(result.severity),
                                      description=result.description, metadata=result.metadata)


@warehouse_asset(
    "marts", "lead_latest_state", group="marts", owners=REVENUE, deps=[EVENTS, IDENTITY_MAP, SUMMARY, LEAD_SCORES],
    description="One row per canonical lead: the latest value of every non-PII property of its lead_created and "
                "lead_updated events from any source (ties at one instant go to the most trusted source; a PII "
                "property never appears, not even hashed), current stage and when it was entered, creation time, "
                "source records merged into it, touches (all time and the 30 days before the data watermark), "
                "first and last touch channel, open opportunity amount, won deals and revenue "
                "(attribution.conversions), and the latest lead score once ml.lead_scores exists.",
    check_specs=[
        dg.AssetCheckSpec("no_pii", asset=["marts", "lead_latest_state"], blocking=True,
                          description="No column is a PII property of the plan and no value is a keyed PII hash."),
        dg.AssetCheckSpec("one_row_per_lead", asset=["marts", "lead_latest_state"], blocking=True,
                          description="Exactly one row per canonical lead."),
    ],
)
def lead_latest_state(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    yield from _materialize(context, warehouse, "lead_latest_state",
                            lambda wh, plan, _: [checks.no_pii(wh, plan), checks.one_row_per_lead(wh)])


@warehouse_asset(
    "marts", "funnel_daily", group="marts", owners=REVENUE, deps=[EVENTS, IDENTITY_MAP, SUMMARY],
    partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(),
    description="Per day and channel (the lead's first touch, `direct` without one): leads created, entries into "
                "each stage, opportunities created (one per deal however many systems report it), conversions "
                "and revenue (attribution.conversions: one per deal). Partitioned by UTC day: a run or a backfill "
                "replaces its days only (a backfill of any range is one run), computed from the whole history; "
                "the nightly refresh rewrites the trailing days that late data can still change.",
    check_specs=[dg.AssetCheckSpec("conversions_reconcile", asset=["marts", "funnel_daily"],
                                   description="The funnel's conversions and revenue equal attribution.conversions'.")],
)
def funnel_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    yield from _materialize(context, warehouse, "funnel_daily", lambda wh, plan, days: [checks.funnel_matches_conversions(wh, days)])


@warehouse_asset(
    "marts", "stage_durations", group="marts", owners=REVENUE, deps=[EVENTS, IDENTITY_MAP],
    description="One row per canonical lead and stage visit, from lead_stage_changed events in time order "
                "(repeated reports of one move are one visit; the first stage is entered at the lead's creation): "
                "entered_at, left_at (NULL while current), hours in stage, next stage.",
)
def stage_durations(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    yield from _materialize(context, warehouse, "stage_durations")


@warehouse_asset(
    "marts", "cohort_conversion", group="marts", owners=REVENUE, deps=[EVENTS, IDENTITY_MAP, SUMMARY],
    description="Monthly creation cohorts by weeks since creation (0 up to the data watermark): leads in the cohort, "
                "leads observed that long, cumulative converted leads, conversion rate, conversions and revenue.",
)
def cohort_conversion(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    yield from _materialize(context, warehouse, "cohort_conversion")


@warehouse_asset(
    "marts", "campaign_performance", group="marts", owners=MARKETING, deps=[EVENTS, IDENTITY_MAP, CAMPAIGN_SUMMARY],
    description="One row per campaign, channel and attribution model: touches (anonymous ones included), touches "
                "linked to leads and the leads reached, current spend, and the model's conversions, revenue, cost "
                "per conversion and ROAS (attribution.campaign_summary).",
)
def campaign_performance(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    yield from _materialize(context, warehouse, "campaign_performance")
