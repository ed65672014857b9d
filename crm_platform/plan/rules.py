"""Field rules: the one description of what a valid value is, derived from the plan.

Each envelope field, planned property and context field of an (event type, version) becomes a
`FieldRule`. The pandera schemas (`pandera_schemas.py`), the JSON Schema export and the check of
migration defaults all read these rules, so the plan's meaning is written down once.

A rule yields ordered checks `(reason_code, fail_mask)`. They are exclusive by construction: a value
of the wrong type only fails `wrong_type`; a string only fails `too_long` when too long, and the
content checks (enum, timestamp, email, url) look only at strings within the length bound, so each
bad value gets exactly one reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from crm_platform.plan.formats import (
    DEFAULT_MAX_LENGTH, EMAIL_BODY, ID_MAX_LENGTH, NAIVE_TIMESTAMP_BODY, STRING_TYPES,
    TIMESTAMP_BODY, URL_BODY,
)
from crm_platform.plan.masks import ARRAY, BOOL, OBJECT, ColumnView, json_kind
from crm_platform.plan.model import EventType, EventVersion, PropertySpec, TrackingPlan

FailMask = Callable[[ColumnView], np.ndarray]

_EXPECTED = {
    "string": "a string", "timestamp": "a timestamp string", "enum": "a string", "email": "a string",
    "url": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "json": "an object or an array", "object": "an object",
}


@dataclass(frozen=True)
class FieldRule:
    """What one frame column (`event_id`, `attributes.<property>`, `context.<field>`) must hold."""

    column: str
    type: str  # a plan property type, or "object" for attributes/context/touch
    required: bool = False
    pii: bool = False
    nonempty: bool = False
    max_length: int | None = None
    values: tuple[str, ...] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    # `source` is an enum whose violation has its own code.
    enum_code: str = "enum_violation"
    description: str | None = None

    @property
    def container(self) -> str | None:
        """`attributes` or `context` for a nested field, None for an envelope field."""
        head, dot, _ = self.column.partition(".")
        return head if dot else None

    @property
    def key(self) -> str:
        return self.column.rpartition(".")[2]


def property_rule(container: str, spec: PropertySpec) -> FieldRule:
    return FieldRule(
        column=f"{container}.{spec.name}", type=spec.type, required=spec.required, pii=spec.pii,
        max_length=spec.effective_max_length, values=spec.values, minimum=spec.minimum,
        maximum=spec.maximum, description=spec.description,
    )


def envelope_rules(et: EventType) -> list[FieldRule]:
    """CONTRACT §5's envelope for one event type (event_type and schema_version are resolved before
    a record reaches its frame, so they need no column)."""
    ident = dict(type="string", nonempty=True, max_length=ID_MAX_LENGTH)
    return [
        FieldRule("event_id", required=True, **ident),
        FieldRule("occurred_at", type="timestamp", required=True, max_length=DEFAULT_MAX_LENGTH),
        FieldRule("source", type="enum", required=True, values=et.allowed_sources,
                  enum_code="source_not_allowed", max_length=DEFAULT_MAX_LENGTH),
        # lead requires lead_id; lead_or_user is a two-column rule (see pandera_schemas); none requires
        # neither. Each id, when given, is still typed.
        FieldRule("lead_id", required=et.identity == "lead", **ident),
        FieldRule("user_id", **ident),
        FieldRule("producer_id", type="string", max_length=ID_MAX_LENGTH),
        FieldRule("attributes", type="object"),
        FieldRule("context", type="object"),
        FieldRule("touch", type="object"),
    ]


def version_rules(plan: TrackingPlan, et: EventType, version: EventVersion) -> list[FieldRule]:
    """Every rule of one (event type, version), in frame column order."""
    return (
        envelope_rules(et)
        + [property_rule("attributes", spec) for spec in version.properties.values()]
        + [property_rule("context", spec) for spec in plan.context.values()]
    )


def _type_ok(rule: FieldRule, v: ColumnView) -> np.ndarray:
    if rule.type in STRING_TYPES:
        return v.is_str
    if rule.type == "integer":
        return v.is_integral
    if rule.type == "number":
        return v.is_number
    if rule.type == "boolean":
        return v.kinds == BOOL
    if rule.type == "json":
        return (v.kinds == OBJECT) | (v.kinds == ARRAY)
    if rule.type == "object":
        return v.kinds == OBJECT
    raise ValueError(f"no type rule for {rule.type!r}")


def _fits(rule: FieldRule, v: ColumnView) -> np.ndarray:
    """Strings that passed the length rules: the only values content checks look at."""
    ok = v.is_str
    if rule.max_length is not None:
        ok = ok & (v.lengths <= rule.max_length)
    if rule.nonempty:
        ok = ok & (v.lengths > 0)
    return ok


def rule_checks(rule: FieldRule) -> list[tuple[str, FailMask]]:
    """The ordered checks of one rule: (reason code, function giving the mask of failing cells).

    `required` stands for both missing_required and null_required: a frame cell is None either way,
    and the record tells which (see validate.py).
    """
    checks: list[tuple[str, FailMask]] = []
    if rule.required:
        checks.append(("required", lambda v: v.is_null))
    checks.append(("wrong_type", lambda v: ~v.is_null & ~_type_ok(rule, v)))
    if rule.nonempty:
        checks.append(("empty_value", lambda v: v.is_str & (v.lengths == 0)))
    if rule.max_length is not None:
        checks.append(("too_long", lambda v: v.is_str & (v.lengths > rule.max_length)))
    if rule.values is not None:
        checks.append((rule.enum_code, lambda v: _fits(rule, v) & ~v.string_in(rule.values)))
    if rule.minimum is not None or rule.maximum is not None:
        def out_of_range(v: ColumnView) -> np.ndarray:
            ok_type = _type_ok(rule, v)
            with np.errstate(invalid="ignore"):
                low = (v.numbers < rule.minimum) if rule.minimum is not None else False
                high = (v.numbers > rule.maximum) if rule.maximum is not None else False
            return ok_type & (low | high)
        checks.append(("out_of_range", out_of_range))
    if rule.type == "timestamp":
        checks.append(("naive_timestamp", lambda v: _fits(rule, v) & v.full_match(NAIVE_TIMESTAMP_BODY)))
        checks.append(("invalid_timestamp", lambda v: _fits(rule, v) & ~v.full_match(NAIVE_TIMESTAMP_BODY)
                       & ~(v.full_match(TIMESTAMP_BODY) & v.valid_calendar_dates())))
    elif rule.type == "email":
        checks.append(("invalid_email", lambda v: _fits(rule, v) & ~v.full_match(EMAIL_BODY)))
    elif rule.type == "url":
        checks.append(("invalid_url", lambda v: _fits(rule, v) & ~v.full_match(URL_BODY)))
    return checks


def failing_codes(rule: FieldRule, value: Any) -> list[str]:
    """Reason codes of one value under `rule`, through the same vectorized checks (a column of one).
    A None value is reported as `required` when the rule requires it."""
    cell = np.empty(1, dtype=object)
    cell[0] = value
    view = ColumnView(cell)
    return [code for code, fails in rule_checks(rule) if fails(view)[0]]


# --- reasons ------------------------------------------------------------------------------------

def show(value: Any, limit: int = 40) -> str:
    """A value for a message: short, never the whole of a long string."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"'{text}'" if isinstance(value, str) else text


_TIMESTAMP_RE = re.compile(TIMESTAMP_BODY)


def describe(code: str, rule: FieldRule, value: Any, event_type: str = "") -> str:
    """`code: detail` for a failed check. The detail names the field and what is wrong; it quotes a
    value only when the rule is not PII and the value helps (enum, source, range, date)."""
    col = rule.column
    quoted = "" if rule.pii else f" {show(value)}"
    if code == "missing_required":
        return f"{code}: {col} is required"
    if code == "null_required":
        return f"{code}: {col} is null"
    if code == "wrong_type":
        return f"{code}: {col} must be {_EXPECTED[rule.type]}, got {json_kind(value)}"
    if code == "empty_value":
        return f"{code}: {col} is empty"
    if code == "too_long":
        return f"{code}: {col} has {len(value)} characters (max {rule.max_length})"
    if code == "enum_violation":
        return f"{code}: {col}{quoted} is not one of: {', '.join(rule.values or ())}"
    if code == "source_not_allowed":
        return f"{code}: source{quoted} is not allowed for {event_type} (allowed: {', '.join(rule.values or ())})"
    if code == "out_of_range":
        if rule.minimum is not None and value < rule.minimum:
            return f"{code}: {col}{quoted} is below the minimum {rule.minimum}"
        return f"{code}: {col}{quoted} is above the maximum {rule.maximum}"
    if code == "naive_timestamp":
        return f"{code}: {col} has no UTC offset (end it with Z or +HH:MM)"
    if code == "invalid_timestamp":
        if _TIMESTAMP_RE.fullmatch(value):
            return f"{code}: {col}{quoted} is not a real date"
        return f"{code}: {col} is not an ISO 8601 date-time like 2026-01-10T15:12:30Z"
    if code == "invalid_email":
        return f"{code}: {col} is not a valid email address"
    if code == "invalid_url":
        return f"{code}: {col} is not an absolute http(s) URL"
    return f"{code}: {col}"
