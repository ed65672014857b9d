"""The marts tables: what analysts' dashboards read (CONTRACT §8, group `marts`).

Two of them take columns from the tracking plan: `lead_latest_state` one per non-PII lead property
(`lead_properties`), `funnel_daily` one per pipeline stage (`stages`). The others are fixed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from crm_platform.plan.model import TrackingPlan
from crm_platform.warehouse.tables import TableDef

SCHEMA = "marts"
LEAD_EVENTS = ("lead_created", "lead_updated")
STAGE_EVENT = "lead_stage_changed"
# Properties that are no lead attribute: the fields an update changed (read to tell a cleared value
# from an absent one), and the stage a lead was created in (the start of its stage history, which
# current_stage carries: shown next to it, the created stage would read as the current one).
NOT_A_COLUMN = {"changed_fields": "update metadata", "stage": "folded into current_stage"}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Plan types as column types: numbers and integers typed, everything else kept as the event's text
# (timestamps as sent, ISO 8601 with their offset; JSON as compact JSON text).
_COLUMN_TYPES = {"number": "double", "integer": "bigint", "boolean": "boolean"}

LEAD_STATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "string"), ("created_at", "timestamp"), ("source_records", "bigint"),
    ("current_stage", "string"), ("stage_entered_at", "timestamp"),
)
LEAD_STATE_ACTIVITY: tuple[tuple[str, str], ...] = (
    ("touches", "bigint"), ("touches_last_30d", "bigint"), ("first_touch_channel", "string"),
    ("last_touch_channel", "string"), ("last_touch_at", "timestamp"),
    ("open_opportunities", "bigint"), ("open_opportunity_amount", "double"),
    ("won_deals", "bigint"), ("won_revenue", "double"),
    ("lead_score", "double"), ("lead_score_tier", "string"), ("lead_score_model_version", "string"),
    ("lead_score_as_of", "timestamp"), ("data_watermark", "timestamp"),
)
# Names the lead-state SQL uses for its own columns (and `v_<property>`, a property's text): a plan
# property of one of these names gets the `property_` prefix rather than shadowing it.
_RESERVED = ({c for c, _ in LEAD_STATE_COLUMNS + LEAD_STATE_ACTIVITY}
             | {"canonical_lead_id", "attributes", "seq", "changed", "lead_key", "created_stage"})


@dataclass(frozen=True)
class LeadProperty:
    name: str  # the property in the events' attributes
    column: str  # its column in marts.lead_latest_state
    type: str  # the column's logical type (warehouse/tables.py)


def pii_properties(plan: TrackingPlan) -> frozenset[str]:
    """Every property that is PII in any version of a lead event (once PII, never shown)."""
    return frozenset(name for t in LEAD_EVENTS if t in plan.event_types
                     for v in plan.event_types[t].versions for name, spec in v.properties.items() if spec.pii)


def lead_properties(plan: TrackingPlan) -> tuple[LeadProperty, ...]:
    """The lead properties lead_latest_state shows: those of the current lead_created and
    lead_updated versions, in plan order, without PII (in any version) and without NOT_A_COLUMN.
    A property typed differently by the two events is kept as text."""
    pii, types = pii_properties(plan), {}
    for t in LEAD_EVENTS:
        if t not in plan.event_types:
            continue
        for name, spec in plan.event_types[t].current.properties.items():
            if name in pii or name in NOT_A_COLUMN:
                continue
            if not _IDENTIFIER.match(name):
                raise ValueError(f"lead property {name!r} is no SQL identifier")
            kind = _COLUMN_TYPES.get(spec.type, "string")
            types[name] = kind if types.get(name, kind) == kind else "string"
    return tuple(LeadProperty(n, f"property_{n}" if n in _RESERVED or n.startswith("v_") else n, k)
                 for n, k in types.items())


def has_stage_property(plan: TrackingPlan) -> bool:
    """Whether lead_created names the stage a lead starts in (current_stage's fallback)."""
    return any("stage" in plan.event_types[t].current.properties for t in LEAD_EVENTS if t in plan.event_types)


def stages(plan: TrackingPlan) -> tuple[str, ...]:
    """The pipeline stages, in the plan's order (lead_stage_changed.to_stage)."""
    values = tuple(plan.event_types[STAGE_EVENT].current.properties["to_stage"].values or ())
    for s in values:
        if not _IDENTIFIER.match(s):
            raise ValueError(f"stage {s!r} is no SQL identifier")
    return values


def lead_latest_state(plan: TrackingPlan) -> TableDef:
    props = tuple((p.column, p.type) for p in lead_properties(plan))
    return TableDef(SCHEMA, "lead_latest_state", LEAD_STATE_COLUMNS + props + LEAD_STATE_ACTIVITY,
                    order_by=("lead_id",),
                    low_cardinality=("current_stage", "first_touch_channel", "last_touch_channel", "lead_score_tier"),
                    description="One row per canonical lead: its latest non-PII properties, stage, touches, "
                                "opportunities, revenue and score.")


def funnel_daily(plan: TrackingPlan) -> TableDef:
    entered = tuple((f"entered_{s}", "bigint") for s in stages(plan))
    return TableDef(SCHEMA, "funnel_daily", (("day", "date"), ("channel", "string"), ("leads_created", "bigint"))
                    + entered + (("opportunities_created", "bigint"), ("conversions", "bigint"), ("revenue", "double")),
                    order_by=("day", "channel"), low_cardinality=("channel",),
                    partition_by="day", partition_granularity="day",  # written a range of days at a time
                    description="Per day and first-touch channel: leads created, stage entries, opportunities, "
                                "conversions and revenue.")


STAGE_DURATIONS = TableDef(SCHEMA, "stage_durations", (
    ("lead_id", "string"), ("visit", "bigint"), ("stage", "string"), ("entered_at", "timestamp"),
    ("left_at", "timestamp"), ("hours_in_stage", "double"), ("next_stage", "string"), ("is_current", "boolean"),
    ("entered_via", "string"), ("reports", "bigint"),
), order_by=("lead_id", "visit"), low_cardinality=("stage", "next_stage", "entered_via"),
    description="One row per canonical lead and stage visit, in order.")

COHORT_CONVERSION = TableDef(SCHEMA, "cohort_conversion", (
    ("cohort_month", "date"), ("weeks_since_created", "bigint"), ("leads", "bigint"), ("leads_observed", "bigint"),
    ("converted_leads", "bigint"), ("conversion_rate", "double"), ("conversions", "bigint"), ("revenue", "double"),
), order_by=("cohort_month", "weeks_since_created"),
    description="Monthly creation cohorts by week since creation: cumulative conversions and rate.")

CAMPAIGN_PERFORMANCE = TableDef(SCHEMA, "campaign_performance", (
    ("channel", "string"), ("campaign_id", "string"), ("campaign_name", "string"), ("model", "string"),
    ("touches", "bigint"), ("linked_touches", "bigint"), ("leads_touched", "bigint"), ("spend", "double"),
    ("conversions", "double"), ("revenue", "double"), ("cost_per_conversion", "double"), ("roas", "double"),
), order_by=("channel", "campaign_id", "model"), low_cardinality=("channel", "model"),
    description="Per campaign, channel and attribution model: touches, leads, spend, conversions, revenue, "
                "cost per conversion and ROAS.")

MARTS = ("lead_latest_state", "funnel_daily", "stage_durations", "cohort_conversion", "campaign_performance")


_FIXED = {t.name: t for t in (STAGE_DURATIONS, COHORT_CONVERSION, CAMPAIGN_PERFORMANCE)}


def table_def(name: str, plan: TrackingPlan) -> TableDef:
    """The definition of mart `name` under `plan`."""
    if name == "lead_latest_state":
        return lead_latest_state(plan)
    if name == "funnel_daily":
        return funnel_daily(plan)
    return _FIXED[name]
