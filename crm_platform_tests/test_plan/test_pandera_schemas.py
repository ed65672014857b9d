"""The pandera schemas are generated from the plan, one per event type and version."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from crm_platform.plan.loader import load_plan
from crm_platform.plan.masks import shared_views
from crm_platform.plan.pandera_schemas import IDENTITY_CHECK, schema_for
from crm_platform.plan.validate import REASON_CODES

PLAN = load_plan()
VERSIONS = [(et.event_type, v.version) for et, v in PLAN.iter_versions()]


@pytest.mark.parametrize("event_type, version", VERSIONS, ids=["@".join(v) for v in VERSIONS])
def test_one_generated_schema_per_type_and_version(event_type, version):
    vs = schema_for(PLAN, event_type, version)
    assert schema_for(PLAN, event_type, version) is vs  # cached
    assert isinstance(vs.schema, pa.DataFrameSchema) and vs.schema.name == f"{event_type}@{version}"
    props = list(PLAN.get_version(event_type, version).properties)
    assert list(vs.schema.columns) == [
        "event_id", "occurred_at", "source", "lead_id", "user_id", "producer_id", "attributes", "context", "touch",
        *[f"attributes.{p}" for p in props], *[f"context.{c}" for c in PLAN.context]]
    names = {check.name for column in vs.schema.columns.values() for check in column.checks}
    assert names <= set(REASON_CODES) | {"required"}
    required = {name for name, column in vs.schema.columns.items() if column.required}
    expected = {"event_id", "occurred_at", "source"} | {
        f"attributes.{p}" for p in PLAN.get_version(event_type, version).required}
    identity = PLAN.event_types[event_type].identity
    expected |= {"lead": {"lead_id"}, "lead_or_user": {"lead_id", "user_id"}, "none": set()}[identity]
    assert required == expected
    assert [c.name for c in vs.schema.checks] == ([IDENTITY_CHECK] if identity == "lead_or_user" else [])


def test_a_frame_validated_directly_reports_failure_cases_by_code():
    vs = schema_for(PLAN, "lead_created", "2026-01-1")
    cells = {
        "event_id": ["e1", "e2"], "occurred_at": ["2026-01-10T15:12:30Z", "2026-01-10T15:12:30"],
        "source": ["webform", "webform"], "lead_id": ["l1", "l2"], "attributes.email": ["a@example.com", "nope"],
    }
    frame = pd.DataFrame({k: np.array(v, dtype=object) for k, v in cells.items()}, dtype=object)
    with pytest.raises(pa.errors.SchemaErrors) as info, shared_views():
        vs.schema.validate(frame, lazy=True)
    cases = info.value.failure_cases
    assert sorted(zip(cases["column"], cases["check"], cases["index"])) == [
        ("attributes.email", "invalid_email", 1), ("occurred_at", "naive_timestamp", 1)]
