"""pandera schemas generated from the plan: one `DataFrameSchema` per (event type, version).

Nothing here is written per event type: every column and check comes from `rules.version_rules`.
A frame has one row per record and one object column per rule (`event_id`, ..., `attributes.<name>`,
`context.<name>`) holding the raw JSON value, None when absent. Every check is vectorized over the
column and named by its reason code, so a `SchemaErrors.failure_cases` row is (column, code, row).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import pandera.pandas as pa

from crm_platform.plan.formats import STRING_TYPES
from crm_platform.plan.masks import ColumnView
from crm_platform.plan.model import TrackingPlan
from crm_platform.plan.rules import FailMask, FieldRule, rule_checks, version_rules

# Name of the two-column check of `lead_or_user` identity.
IDENTITY_CHECK = "identity_required"


@dataclass(frozen=True, eq=False)
class VersionSchema:
    """A generated schema with the rules it came from (to turn failures back into reasons)."""

    event_type: str
    version: str
    rules: tuple[FieldRule, ...]
    schema: pa.DataFrameSchema
    # Columns every frame must carry: required fields, and those the frame-wide checks read.
    # Other columns may be left out of a frame when no record has the field.
    always: frozenset[str]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(rule.column for rule in self.rules)

    @cached_property
    def by_column(self) -> dict[str, FieldRule]:
        return {rule.column: rule for rule in self.rules}


def _as_check(code: str, fails: FailMask, expect_strings: bool) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        return pd.Series(~fails(ColumnView.of(series, expect_strings)), index=series.index)

    # ignore_na=False: nulls are decided by the rules themselves (a null is fine unless required).
    return pa.Check(check, name=code, ignore_na=False, element_wise=False)


def _identity_check(df: pd.DataFrame) -> pd.Series:
    missing = ColumnView.of(df["lead_id"]).is_null & ColumnView.of(df["user_id"]).is_null
    return pd.Series(~missing, index=df.index)


def build_schema(plan: TrackingPlan, event_type: str, version: str) -> VersionSchema:
    et = plan.event_types[event_type]
    ev = et.version(version)
    if ev is None:
        raise KeyError(f"{event_type} has no version {version!r}")
    rules = tuple(version_rules(plan, et, ev))
    frame_checks = []
    always = {rule.column for rule in rules if rule.required}
    # `lead` is the lead_id column's `required`; `none` needs no id at all (one given is still typed).
    if et.identity == "lead_or_user":
        frame_checks.append(pa.Check(_identity_check, name=IDENTITY_CHECK, ignore_na=False))
        always |= {"lead_id", "user_id"}
    columns = {
        rule.column: pa.Column(
            None, nullable=True, required=rule.column in always, title=rule.column, description=rule.description,
            checks=[_as_check(code, fails, rule.type in STRING_TYPES) for code, fails in rule_checks(rule)],
        )
        for rule in rules
    }
    schema = pa.DataFrameSchema(
        columns, checks=frame_checks, strict=True, name=f"{event_type}@{version}",
        title=f"{event_type} {version}", description=et.description,
        metadata={"plan_version": plan.version, "owner": et.owner},
    )
    return VersionSchema(event_type, version, rules, schema, frozenset(always))


_CACHE: dict[tuple[str, str, str], VersionSchema] = {}


def schema_for(plan: TrackingPlan, event_type: str, version: str) -> VersionSchema:
    """The generated schema of (`event_type`, `version`), built once per plan version."""
    key = (plan.version, event_type, version)
    vs = _CACHE.get(key)
    if vs is None:
        vs = _CACHE[key] = build_schema(plan, event_type, version)
    return vs
