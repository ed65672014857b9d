"""The tracking plan as code: YAML (plan.yaml, events/*.yaml) -> `TrackingPlan` -> pandera schemas,
JSON Schemas, and the validation of raw event records.

    from crm_platform.plan import load_plan, validate_records
    plan = load_plan()
    results = validate_records(enumerate(lines, 1), plan)

Importing this package is light (YAML and dataclasses): the validation modules, and with them
pandas and pandera, load on first use.
"""
from __future__ import annotations

from typing import Any

from crm_platform.plan.loader import PLAN_DIR, PlanError, lint_plan, load_plan
from crm_platform.plan.model import EventType, EventVersion, Migration, PropertySpec, TrackingPlan

_LAZY = {
    "validate_records": "crm_platform.plan.validate",
    "iter_validate": "crm_platform.plan.validate",
    "validate_event": "crm_platform.plan.validate",
    "RecordResult": "crm_platform.plan.validate",
    "REASON_CODES": "crm_platform.plan.validate",
    "upgrade": "crm_platform.plan.migrate",
    "example_event": "crm_platform.plan.examples",
    "export_jsonschema": "crm_platform.plan.jsonschema_export",
    "schema_for": "crm_platform.plan.pandera_schemas",
    "run_plan_check": "crm_platform.plan.check",
    "export_command": "crm_platform.plan.check",
}

__all__ = [
    "PLAN_DIR", "PlanError", "lint_plan", "load_plan",
    "EventType", "EventVersion", "Migration", "PropertySpec", "TrackingPlan", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crm_platform.plan' has no attribute {name!r}")
