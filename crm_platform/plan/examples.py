"""Canonical example events built from the plan (tests and docs use them; they are always valid)."""
from __future__ import annotations

import math
from typing import Any

from crm_platform.plan.model import PropertySpec, TrackingPlan

EXAMPLE_OCCURRED_AT = "2026-01-10T15:12:30Z"


def example_value(spec: PropertySpec) -> Any:
    """A valid value for `spec`, within its bounds."""
    t = spec.type
    if t == "enum":
        return spec.values[0]  # type: ignore[index]
    if t == "integer":
        low = math.ceil(spec.minimum) if spec.minimum is not None else None
        high = math.floor(spec.maximum) if spec.maximum is not None else None
        if low is not None and high is not None:
            return (low + high) // 2
        return low + 1 if low is not None else (high - 1 if high is not None else 1)
    if t == "number":
        if spec.minimum is not None and spec.maximum is not None:
            return (spec.minimum + spec.maximum) / 2
        if spec.minimum is not None:
            return spec.minimum + 1.5
        return spec.maximum - 1.5 if spec.maximum is not None else 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return EXAMPLE_OCCURRED_AT
    if t == "email":
        return "person@example.com"
    if t == "url":
        return "https://www.example.com/landing?utm_source=example"
    if t == "json":
        return {"example": [1, "two"]}
    text = f"example {spec.name}"
    return text[: spec.effective_max_length]


def example_event(plan: TrackingPlan, event_type: str, version: str | None = None) -> dict[str, Any]:
    """A valid canonical event of (`event_type`, `version`, default: current) with every planned
    property and context field set, so a test can break any one of them."""
    et = plan.event_types[event_type]
    ev = et.version(version) if version is not None else et.current
    if ev is None:
        raise KeyError(f"{event_type} has no version {version!r}")
    return {
        "event_type": event_type,
        "schema_version": ev.version,
        "event_id": f"evt_example_{event_type}_{ev.version}",
        "occurred_at": EXAMPLE_OCCURRED_AT,
        "source": et.sources[0] if et.sources else "crm",
        "lead_id": "lead_example",
        "user_id": "user_example",
        "producer_id": "example-producer",
        "attributes": {name: example_value(spec) for name, spec in ev.properties.items()},
        "context": {name: example_value(spec) for name, spec in plan.context.items()},
    }
