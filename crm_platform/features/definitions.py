"""The feature definitions: names, the SQL that computes them, and their lineage.

Window features are aggregates over the lead's events in [as_of - N days, as_of) (`lead_features.sql`,
alias `e` for the event, `s` for the (lead, as_of) row); the others are point values as of as_of.
The definitions and the SQL text together give `feature_version`: change either and the version
changes, so a model trained on one version is never fed another.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from crm_platform.features.config import FeatureConfig
from crm_platform.plan.model import TrackingPlan


@dataclass(frozen=True)
class Feature:
    name: str
    sql: str  # an aggregate over the windowed join (window features) or "" (computed in lead_features.sql)
    sources: tuple[str, ...]  # event types (and properties) it reads
    window_days: int | None = None
    description: str = ""


# Point-in-time values computed in lead_features.sql itself, for the lineage.
POINT_FEATURES = (
    Feature("days_since_created", "", ("lead_created", "any lead event"),
            description="Days from the lead's first event (its lead_created, unless something came earlier) to as_of."),
    Feature("current_stage", "", ("lead_stage_changed.to_stage", "lead_created.stage", "lead_updated.stage"),
            description="The stage entered last before as_of (the reported stage, else new)."),
    Feature("days_in_stage", "", ("lead_stage_changed",), description="Days since the current stage was entered."),
    Feature("open_opportunity_amount", "", ("opportunity_created.amount", "opportunity_closed"),
            description="Amount of opportunities open at as_of (per source system; the largest)."),
    Feature("lead_source", "", ("lead_created.lead_source", "lead_updated.lead_source"),
            description="The latest lead_source reported before as_of."),
    Feature("estimated_value", "", ("lead_created.estimated_value", "lead_updated.estimated_value"),
            description="The latest estimated_value reported before as_of."),
    Feature("employee_count", "", ("lead_created.employee_count", "lead_updated.employee_count"),
            description="The latest employee_count reported before as_of."),
    Feature("email_free_mail", "", ("lead_created.email", "lead_updated.email", "pii.vault"),
            description="Whether the latest e-mail before as_of is at a free-mail provider (NULL: no e-mail)."),
)
# Latest-value attributes read from lead_created / lead_updated: (feature, property, SQL type).
REPORTED = (("stage_reported", "stage", None), ("lead_source", "lead_source", None),
            ("estimated_value", "estimated_value", "DOUBLE"), ("employee_count", "employee_count", "BIGINT"),
            ("email_hash", "email", None))


def _values(plan: TrackingPlan, event_type: str, prop: str) -> tuple[str, ...]:
    return tuple(plan.event_types[event_type].current.properties[prop].values or ())


def window_features(plan: TrackingPlan, config: FeatureConfig) -> list[Feature]:
    out = []

    def count(name: str, cond: str, sources: tuple[str, ...], desc: str, d: int) -> None:
        inside = f"e.occurred_at >= s.as_of - INTERVAL {int(d)} DAY"
        out.append(Feature(f"{name}_{d}d", f"count(*) FILTER (WHERE {cond} AND {inside})", sources, d, desc))

    for d in config.windows_days:
        inside = f"e.occurred_at >= s.as_of - INTERVAL {int(d)} DAY"

        count("activities", "e.kind = 'activity'", ("activity_logged",), "Activities logged.", d)
        for t in _values(plan, "activity_logged", "activity_type"):
            count(f"activities_{t}", f"e.kind = 'activity' AND e.activity_type = '{t}'",
                  ("activity_logged.activity_type",), f"Activities of type {t}.", d)
        for direction in _values(plan, "activity_logged", "direction"):
            count(f"activities_{direction}", f"e.kind = 'activity' AND e.direction = '{direction}'",
                  ("activity_logged.direction",), f"{direction.capitalize()} activities.", d)
        count("touches", "e.kind = 'touch'", ("campaign_touch",), "Campaign touches (anonymous ones through user_id).", d)
        for channel in _values(plan, "campaign_touch", "channel"):
            count(f"touches_{channel}", f"e.kind = 'touch' AND e.channel = '{channel}'",
                  ("campaign_touch.channel",), f"Touches from {channel}.", d)
        out.append(Feature(f"distinct_campaigns_{d}d",
                           f"count(DISTINCT CASE WHEN e.kind = 'touch' AND {inside} THEN e.campaign_id END)",
                           ("campaign_touch.campaign_id",), d, "Distinct campaigns touched."))
        count("stage_changes", "e.kind = 'stage'", ("lead_stage_changed",), "Stage changes.", d)
    longest = config.longest_window
    for kind, name in (("touch", "touch"), ("activity", "activity")):
        out.append(Feature(f"days_since_last_{name}",
                           f"date_diff('second', max(CASE WHEN e.kind = '{kind}' THEN e.occurred_at END), s.as_of) / 86400.0",
                           ("campaign_touch",) if kind == "touch" else ("activity_logged",), longest,
                           f"Days since the last {name} in the longest window (NULL: none in it)."))
    return out


def attribute_reports_sql() -> str:
    """One row per reported value of the latest-value attributes (lead_id, event_id, reported_at, name, value)."""
    parts = [f"SELECT canonical_lead_id AS lead_id, event_id, occurred_at AS reported_at, '{feature}' AS name, "
             f"attributes ->> '{prop}' AS value FROM {{events}} "
             f"WHERE event_type IN ('lead_created', 'lead_updated') AND canonical_lead_id IS NOT NULL "
             f"AND (attributes ->> '{prop}') IS NOT NULL" for feature, prop, _ in REPORTED]
    return "\nUNION ALL\n".join(parts)


def attribute_features_sql() -> str:
    cols = []
    for feature, _, kind in REPORTED:
        value = f"max(CASE WHEN r.name = '{feature}' THEN r.value END)"
        cols.append(f"{f'try_cast({value} AS {kind})' if kind else value} AS {feature}")
    return ",\n           ".join(cols)


def version(text: str, features: list[Feature], config: FeatureConfig) -> str:
    doc = json.dumps({"sql": text, "features": [(f.name, f.sql) for f in features],
                      "windows": config.windows_days, "weekday": config.weekday}, sort_keys=True)
    return "f" + hashlib.sha256(doc.encode()).hexdigest()[:12]


def lineage(features: list[Feature]) -> list[dict]:
    return [{"feature": f.name, "reads": ", ".join(f.sources), "window_days": f.window_days,
             "description": f.description} for f in (*POINT_FEATURES, *features)]
