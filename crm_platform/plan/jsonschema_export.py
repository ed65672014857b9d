"""JSON Schema (draft 2020-12) of every event type and version, for producers and outside tooling.

Each schema describes the canonical event (properties inside `attributes`) and is derived from the
same `FieldRule`s as the pandera schemas, with the same regexes (formats.py), so a canonical event
is valid under one exactly when it is valid under the other (tested). Non-canonical input that the
validator also accepts (properties at the top level or in `touch`) is normalized before storage and
is not what these schemas describe.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crm_platform.plan.formats import FORMAT_BODIES, STRING_TYPES, full_match_pattern
from crm_platform.plan.model import EventType, EventVersion, TrackingPlan
from crm_platform.plan.rules import FieldRule, envelope_rules, property_rule

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_JSON_TYPE = {"integer": "integer", "number": "number", "boolean": "boolean", "json": ["object", "array"],
              "object": "object"}


def schema_id(event_type: str, version: str) -> str:
    return f"urn:crm-platform:event:{event_type}:{version}"


def _types(rule: FieldRule) -> list[str]:
    t = "string" if rule.type in STRING_TYPES else _JSON_TYPE[rule.type]
    types = list(t) if isinstance(t, list) else [t]
    # A null optional value counts as absent, so null is allowed wherever absence is.
    return types if rule.required else types + ["null"]


def field_schema(rule: FieldRule) -> dict[str, Any]:
    """The JSON Schema of one field's value."""
    types = _types(rule)
    s: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    if rule.description:
        s["description"] = rule.description
    if rule.values is not None:
        s["enum"] = list(rule.values) + ([] if rule.required else [None])
    if rule.type in STRING_TYPES:
        if rule.nonempty:
            s["minLength"] = 1
        if rule.max_length is not None:
            s["maxLength"] = rule.max_length
    if rule.type in FORMAT_BODIES:
        s["pattern"] = full_match_pattern(FORMAT_BODIES[rule.type])
    if rule.type == "timestamp":
        # The pattern fixes the shape (offset required); `format` adds the calendar check (no
        # 30 February). Email and url get no `format`: validators disagree on those, the
        # pattern is the contract.
        s["format"] = "date-time"
    if rule.minimum is not None:
        s["minimum"] = rule.minimum
    if rule.maximum is not None:
        s["maximum"] = rule.maximum
    if rule.pii:
        s["x-pii"] = True
    return s


def _object_schema(rules: list[FieldRule], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {rule.key: field_schema(rule) for rule in rules},
        "required": [rule.key for rule in rules if rule.required],
        # Unplanned properties are allowed and kept (CONTRACT: the plan is a floor, not a cage).
        "additionalProperties": True,
    }


def event_schema(plan: TrackingPlan, et: EventType, ev: EventVersion) -> dict[str, Any]:
    """The JSON Schema of (`et`, `ev`)."""
    env = {rule.column: rule for rule in envelope_rules(et)}
    props = [property_rule("attributes", spec) for spec in ev.properties.values()]
    ctx = [property_rule("context", spec) for spec in plan.context.values()]
    properties: dict[str, Any] = {
        "event_type": {"const": et.event_type},
        "schema_version": {"const": ev.version},
    }
    for name in ("event_id", "occurred_at", "source", "lead_id", "user_id", "producer_id"):
        properties[name] = field_schema(env[name])
    if et.identity == "none":
        for name in ("lead_id", "user_id"):
            properties[name]["description"] = ("Optional: this event is about no person; an id given is kept as "
                                               "sent but names no record.")
    attributes = _object_schema(props, "Event-specific properties.")
    context = _object_schema(ctx, "Client context of the event.")
    if not attributes["required"]:
        attributes["type"] = ["object", "null"]
    context["type"] = ["object", "null"]
    properties["attributes"] = attributes
    properties["context"] = context
    properties["touch"] = {"type": ["object", "null"],
                           "description": "Campaign properties some producers nest here; read as attributes."}
    required = ["event_type", "schema_version", "event_id", "occurred_at", "source"]
    if et.identity == "lead":  # lead_or_user: the anyOf below; none: no id required
        required.append("lead_id")
    if attributes["required"]:
        required.append("attributes")
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": schema_id(et.event_type, ev.version),
        "title": f"{et.event_type} {ev.version}",
        "description": et.description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
    }
    if et.identity == "lead_or_user":
        schema["anyOf"] = [
            {"required": ["lead_id"], "properties": {"lead_id": {"type": "string"}}},
            {"required": ["user_id"], "properties": {"user_id": {"type": "string"}}},
        ]
    schema.update({
        "x-owner": et.owner,
        "x-plan-version": plan.version,
        "x-retention-days": et.retention_days,
        "x-consent-purpose": et.consent_purpose,
        "x-identity": et.identity,
        "x-current-version": et.current.version,
    })
    return schema


def export_jsonschema(plan: TrackingPlan, out_dir: Path | str) -> list[Path]:
    """Write `out_dir/<event_type>/<version>.schema.json` for every type and version; returns the
    paths written, in order. Existing files are overwritten; nothing else is touched."""
    out = Path(out_dir)
    written = []
    for et, ev in plan.iter_versions():
        path = out / et.event_type / f"{ev.version}.schema.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(event_schema(plan, et, ev), indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
