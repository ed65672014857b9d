"""The tracking plan as a table: one row per event type, schema version and property, so analysts and
governance jobs (retention, consent, PII audits) query the contract instead of reading YAML."""
from __future__ import annotations

import pyarrow as pa

from crm_platform.plan.model import TrackingPlan

CATALOG_SCHEMA = pa.schema([
    ("plan_version", pa.string()),
    ("event_type", pa.string()),
    ("schema_version", pa.string()),
    ("is_current", pa.bool_()),
    ("property", pa.string()),
    ("property_type", pa.string()),
    ("required", pa.bool_()),
    ("pii", pa.bool_()),
    ("enum_values", pa.list_(pa.string())),
    ("max_length", pa.int64()),
    ("minimum", pa.float64()),
    ("maximum", pa.float64()),
    ("property_description", pa.string()),
    ("owner", pa.string()),
    ("identity", pa.string()),
    ("allowed_sources", pa.list_(pa.string())),
    ("consent_purpose", pa.string()),
    ("retention_days", pa.int32()),
    ("event_description", pa.string()),
])


def catalog_table(plan: TrackingPlan) -> pa.Table:
    rows = []
    for et, version in plan.iter_versions():
        for name in sorted(version.properties):
            spec = version.properties[name]
            rows.append({
                "plan_version": plan.version,
                "event_type": et.event_type,
                "schema_version": version.version,
                "is_current": version is et.current,
                "property": name,
                "property_type": spec.type,
                "required": spec.required,
                "pii": spec.pii,
                "enum_values": list(spec.values) if spec.values else None,
                "max_length": spec.effective_max_length,
                "minimum": spec.minimum,
                "maximum": spec.maximum,
                "property_description": spec.description,
                "owner": et.owner,
                "identity": et.identity,
                "allowed_sources": list(et.allowed_sources),
                "consent_purpose": et.consent_purpose,
                "retention_days": et.retention_days,
                "event_description": et.description,
            })
    return pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
