"""Validation of raw event records against the tracking plan.

Per record: JSON object? -> event_type in the plan? -> schema_version known for it? Records that pass
are grouped by (event type, version); each group becomes one pandas frame checked at once, lazily, by
that version's generated pandera schema, and the failure cases are mapped back to their records as
reasons (`code: detail`). Valid records come out normalized: properties given at the top level or in
`touch` collected into `attributes` (attributes win, then touch, then top level; a null never
overrides a value), then upgraded to the type's current version.

Reason codes (stable): invalid_utf8, invalid_json, not_an_object, unknown_event_type,
unknown_schema_version, missing_required, null_required, empty_value, wrong_type, enum_violation,
source_not_allowed, too_long, out_of_range, invalid_timestamp, naive_timestamp, invalid_email,
invalid_url.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from itertools import islice, repeat
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa

from crm_platform.plan.decode import parse_record
from crm_platform.plan.formats import ENVELOPE_FIELDS
from crm_platform.plan.masks import json_kind, shared_views
from crm_platform.plan.migrate import upgrade_attributes
from crm_platform.plan.model import TrackingPlan
from crm_platform.plan.pandera_schemas import IDENTITY_CHECK, VersionSchema, schema_for
from crm_platform.plan.rules import describe, show

REASON_CODES: tuple[str, ...] = (
    "invalid_utf8", "invalid_json", "not_an_object", "unknown_event_type", "unknown_schema_version",
    "missing_required", "null_required", "empty_value", "wrong_type", "enum_violation",
    "source_not_allowed", "too_long", "out_of_range", "invalid_timestamp", "naive_timestamp",
    "invalid_email", "invalid_url",
)
# Big enough that pandera's fixed cost per check is noise, small enough to bound memory.
DEFAULT_CHUNK_SIZE = 100_000

_ENVELOPE = frozenset(ENVELOPE_FIELDS)
_EMPTY: dict[str, Any] = {}

try:  # pandas' own dicts -> 2D array loop (behind DataFrame.from_records); private, so optional
    from pandas._libs.lib import dicts_to_array as _dicts_to_array
except ImportError:  # pragma: no cover - depends on the pandas version
    _dicts_to_array = None


class RecordResult(NamedTuple):
    """The verdict on one record. `event` (valid records only) is the normalized event, upgraded to
    the current version (it may share nested values with a dict given as input);
    `original_schema_version` is the version the record arrived with.

    A NamedTuple, not a dataclass: a million of these are built per million records."""

    line: int
    ok: bool
    reasons: tuple[str, ...] = ()
    event: dict[str, Any] | None = None
    event_type: str | None = None
    original_schema_version: str | None = None


def _merged_attributes(obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The record's properties from `attributes`, `touch` and the top level (CONTRACT §5), and
    whether the record was already canonical (nothing outside the envelope)."""
    attrs = obj.get("attributes")
    if _ENVELOPE.issuperset(obj):  # the common, canonical shape: nothing to collect
        return (attrs if type(attrs) is dict else {}), True
    merged = {k: v for k, v in obj.items() if k not in _ENVELOPE and k != "touch"}
    for layer in (obj.get("touch"), attrs):  # later layers win
        if isinstance(layer, dict):
            for k, v in layer.items():
                if v is not None or k not in merged:
                    merged[k] = v
    return merged, False


def _header_reason(obj: dict[str, Any], plan: TrackingPlan) -> str:
    """Why a record cannot reach a schema: its type, then its version, is missing or unknown."""
    et = None
    for field in ("event_type", "schema_version"):
        value = obj.get(field)
        if value is None:
            return f"{'null_required' if field in obj else 'missing_required'}: {field} is required"
        if not isinstance(value, str):
            return f"wrong_type: {field} must be a string, got {json_kind(value)}"
        if field == "event_type":
            et = plan.event_types.get(value)
            if et is None:
                return f"unknown_event_type: {show(value)} is not an event type of the plan"
    return (f"unknown_schema_version: {show(obj['schema_version'])} is not a version of "
            f"{et.event_type} (known: {', '.join(et.version_names)})")  # type: ignore[union-attr]


def _table(dicts: list[dict], keys: list[str]) -> np.ndarray:
    """(len(dicts), len(keys)) object array of `d.get(key)`; absent keys are None or NaN, both null."""
    if _dicts_to_array is not None:
        return _dicts_to_array(dicts, keys)  # one Cython loop, ~4x a comprehension per column
    out = np.empty((len(dicts), len(keys)), dtype=object)
    for j, key in enumerate(keys):
        out[:, j] = np.fromiter(map(dict.get, dicts, repeat(key)), dtype=object, count=len(dicts))
    return out


def _frame(vs: VersionSchema, objs: list[dict], attrs: list[dict]) -> pd.DataFrame:
    """One row per record, one object column per rule, holding the raw JSON values.

    Optional fields (envelope, properties, context) that no record of the group carries get no
    column: they cannot fail, and every column costs passes over its cells (their schema columns
    are not `required`). Which keys occur is read from the dicts' keys, not their values."""
    contexts = [o["context"] if type(o.get("context")) is dict else _EMPTY for o in objs]
    seen = {None: set().union(*objs), "attributes": set().union(*attrs), "context": set().union(*contexts)}
    columns: list[str] = []
    keys: dict[str | None, list[str]] = {None: [], "attributes": [], "context": []}
    for rule in vs.rules:
        if rule.column in vs.always or rule.key in seen[rule.container]:
            columns.append(rule.column)
            keys[rule.container].append(rule.key)
    table = np.hstack([_table(objs, keys[None]), _table(attrs, keys["attributes"]),
                       _table(contexts, keys["context"])])
    # dtype=object: pandas 3 would otherwise convert string columns to Arrow strings up front.
    return pd.DataFrame(table, columns=columns, dtype=object, copy=False)


def _present(container: str | None, key: str, obj: dict, attrs: dict) -> bool:
    if container == "attributes":
        return key in attrs
    if container == "context":
        ctx = obj.get("context")
        return isinstance(ctx, dict) and key in ctx
    return key in obj


def _failures(vs: VersionSchema, frame: pd.DataFrame, objs: list[dict], attrs: list[dict]) -> dict[int, list[str]]:
    """Row position -> reasons, from one lazy pandera run over the whole group."""
    try:
        with shared_views():
            vs.schema.validate(frame, lazy=True, inplace=True)  # the frame is ours: no copy
        return {}
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    order = {col: i for i, col in enumerate(vs.columns)}
    found: dict[int, list[tuple[int, str]]] = {}
    seen: set[int] = set()
    for column, check, index, value in zip(cases["column"], cases["check"], cases["index"], cases["failure_case"]):
        if index is None or (isinstance(index, float) and np.isnan(index)):
            raise RuntimeError(f"{vs.schema.name}: check {check!r} on {column!r} failed without a row: {value}")
        row = int(index)
        obj = objs[row]
        if check == IDENTITY_CHECK:  # reported once per row, whatever the column
            if row in seen:
                continue
            seen.add(row)
            null = any(f in obj and obj[f] is None for f in ("lead_id", "user_id"))
            code = "null_required" if null else "missing_required"
            found.setdefault(row, []).append(
                (order["lead_id"], f"{code}: lead_id or user_id is required for {vs.event_type}"))
            continue
        rule = vs.by_column[column]
        code = check
        if check == "required":  # the frame holds None either way; the record tells which
            code = "null_required" if _present(rule.container, rule.key, obj, attrs[row]) else "missing_required"
            value = None
        found.setdefault(row, []).append((order[column], describe(code, rule, value, vs.event_type)))
    return {row: [reason for _, reason in sorted(items, key=lambda item: item[0])] for row, items in found.items()}


def _validate_group(plan: TrackingPlan, event_type: str, version: str, objs: list[dict]
                    ) -> tuple[dict[int, list[str]], list[dict | None]]:
    """(reasons by row, normalized events) for the records of one (type, version)."""
    vs = schema_for(plan, event_type, version)
    et = plan.event_types[event_type]
    merged = [_merged_attributes(obj) for obj in objs]
    attrs = [m[0] for m in merged]
    failures = _failures(vs, _frame(vs, objs, attrs), objs, attrs)
    current = et.current.version
    events: list[dict | None] = []
    for row, obj in enumerate(objs):
        if row in failures:
            events.append(None)
            continue
        row_attrs, canonical = merged[row]
        event = obj.copy() if canonical else {k: v for k, v in obj.items() if k in _ENVELOPE}
        if version != current:
            event["attributes"] = upgrade_attributes(et, version, row_attrs)
            event["schema_version"] = current
        else:
            event["attributes"] = row_attrs
        events.append(event)
    return failures, events


def _validate_chunk(chunk: list[tuple[int, Any]], plan: TrackingPlan) -> list[RecordResult]:
    with _gc_paused():
        return _validate_chunk_inner(chunk, plan)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsed JSON is acyclic, so the cyclic GC has nothing to find in it; but with a chunk's
    millions of young dicts alive it runs over and over (measured: ~40% of the run). Pause it
    for the chunk; it resumes, and collects anything pandas left behind, right after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _validate_chunk_inner(chunk: list[tuple[int, Any]], plan: TrackingPlan) -> list[RecordResult]:
    results: list[RecordResult | None] = [None] * len(chunk)
    known = _known_versions(plan)
    groups: dict[tuple[str, str], tuple[list[int], list[dict]]] = {}
    for pos, (line, raw) in enumerate(chunk):
        obj, reason = parse_record(raw)
        if reason is None:
            key = (obj.get("event_type"), obj.get("schema_version"))  # type: ignore[union-attr]
            if type(key[0]) is str and type(key[1]) is str and key in known:
                group = groups.get(key)  # type: ignore[arg-type]
                if group is None:
                    group = groups[key] = ([], [])  # type: ignore[index]
                group[0].append(pos)
                group[1].append(obj)  # type: ignore[arg-type]
                continue
            reason = _header_reason(obj, plan)  # type: ignore[arg-type]
        et = obj.get("event_type") if obj is not None else None
        known_type = et if type(et) is str and et in plan.event_types else None
        results[pos] = RecordResult(line, False, (reason,), None, known_type)

    for (event_type, version), (positions, objs) in groups.items():
        failures, events = _validate_group(plan, event_type, version, objs)
        for row, pos in enumerate(positions):
            reasons = failures.get(row)
            if reasons:
                results[pos] = RecordResult(chunk[pos][0], False, tuple(reasons), None, event_type, version)
            else:
                results[pos] = RecordResult(chunk[pos][0], True, (), events[row], event_type, version)
    return results  # type: ignore[return-value]


_KNOWN: dict[str, frozenset[tuple[str, str]]] = {}


def _known_versions(plan: TrackingPlan) -> frozenset[tuple[str, str]]:
    known = _KNOWN.get(plan.version)
    if known is None:
        known = _KNOWN[plan.version] = frozenset((et.event_type, v.version) for et, v in plan.iter_versions())
    return known


def iter_validate(
    records: Iterable[tuple[int, bytes | str | dict]],
    plan: TrackingPlan | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[RecordResult]:
    """Validate `(line, record)` pairs lazily, `chunk_size` records at a time, in input order.
    If `records` raises (say, a truncated file), the records read before are validated and
    yielded first, then the exception propagates."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if plan is None:
        from crm_platform.plan.loader import load_plan

        plan = load_plan()
    it = iter(records)
    while True:
        chunk: list[tuple[int, Any]] = []
        failure: BaseException | None = None
        try:
            for item in islice(it, chunk_size):
                chunk.append(item)
        except Exception as exc:  # e.g. a truncated file: first validate what was read before it
            failure = exc
        if chunk:
            yield from _validate_chunk(chunk, plan)
        if failure is not None:
            raise failure
        if len(chunk) < chunk_size:
            return


def validate_records(
    records: Iterable[tuple[int, bytes | str | dict]],
    plan: TrackingPlan | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> list[RecordResult]:
    """Validate `(line, record)` pairs; one `RecordResult` per record, in input order.
    A record is raw JSON (bytes or str) or an already parsed dict (never modified)."""
    return list(iter_validate(records, plan, chunk_size))


def validate_event(event: bytes | str | dict, plan: TrackingPlan | None = None) -> RecordResult:
    """Validate one record (convenience for tests and tools; batches are much faster)."""
    return validate_records([(1, event)], plan)[0]
