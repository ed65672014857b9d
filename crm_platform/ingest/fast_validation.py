"""The fast path of event validation: one lean SELECT for the lines real producers mostly send.

`compile_fast_sql(plan, lines)` returns a SELECT over a relation of `line_no BIGINT, raw BLOB` (raw
may still end with its line end) that yields the normalized event, PII already hashed, of every line
it can vouch for, and passes every other line to the function `crm_divert(line_no, raw)` (which keeps
it for the exact path, `sql_validation`, and returns false). Its rows are exactly what the exact path
gives for the same lines (tested line by line), so a line's fate never depends on the path it took.

A line takes the fast path when it is in the canonical shape and certainly valid:

- valid UTF-8, starting with `{`, without a backslash (so every string is its own text: no escapes
  to decode, and `"` only ever delimits strings), without `NaN` or `Infinity` (see sql_validation's
  JSON strictness), valid JSON;
- its top-level keys are envelope fields only, each once, and no `touch`: the number of keys equals
  the number of envelope paths found (a top-level property or a repeated key makes it larger);
- a known (event type, version), and inside `attributes` and `context` only keys the version knows,
  each once (same count test);
- every field passes the exact path's cheap tests (`_pass_sql`), which are conservative;
- after its PII is replaced by hashes, no `@` is left in attributes or context (the exact path
  hashes e-mail addresses found in unplanned fields as a defence in depth).

Everything else (top-level properties, `touch`, repeated keys, escapes, nulls in properties,
unplanned properties, invalid records) takes the exact path. The cost is three parses of the line
(json_valid, one json_extract of every envelope and context path, json_keys) and one of the small
attributes and context objects.

PII: the values of the current version's `pii: true` properties and of the `pii: true` context
fields (the `pii_slots`) go to the functions `crm_pii_hash_<slot>` (`pii_hashing.PiiHasher`), which
return their keyed hashes, computing each distinct value once, and record the clear values for
pii.vault. The hashes take the values' place in the attributes and context texts.
"""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
from duckdb.sqltypes import BIGINT, BLOB, BOOLEAN, VARCHAR

from crm_platform.governance.residency import COLUMN as RESIDENCY
from crm_platform.governance.residency import load_config as load_residency
from crm_platform.ingest.pii_hashing import PiiHasher
from crm_platform.ingest.sql_validation import (
    _by_vid,
    _is_string,
    _lit,
    _local_time,
    _offset_minutes,
    _pass_sql,
    _upgrade,
    _Version,
    _versions,
)
from crm_platform.plan.formats import ENVELOPE_FIELDS
from crm_platform.plan.jsonl import LINE_SCHEMA
from crm_platform.plan.model import TrackingPlan
from crm_platform.plan.rules import envelope_rules, property_rule

DIVERT_FUNCTION = "crm_divert"
HASH_FUNCTION = "crm_pii_hash"  # crm_pii_hash_<i> hashes the values of PII slot i

# The columns of the SELECT, in order.
FAST_COLUMNS: tuple[str, ...] = (
    "line_no", "event_id", "event_type", "schema_version", "original_schema_version", "occurred_at",
    "occurred_at_offset_minutes", "event_date", "source", "producer_id", "lead_id", "user_id", "attributes",
    "context", "data_residency",
)


def pii_slots(plan: TrackingPlan) -> tuple[str, ...]:
    """The fields whose values the fast path hashes, in the order of the list it passes to
    `crm_pii_hash_<i>`: `context.<field>`, then `attributes.<property>` of every type's current version."""
    ctx = [f"context.{k}" for k, spec in plan.context.items() if spec.pii]
    attrs = [f"attributes.{k}" for et in sorted(plan.event_types.values(), key=lambda e: e.event_type)
             for k, spec in et.current.properties.items() if spec.pii]
    return tuple(dict.fromkeys(ctx + attrs))


def compile_fast_sql(plan: TrackingPlan, lines_relation: str) -> str:
    """The fast path's SELECT over `lines_relation` (see the module docstring). It calls the
    functions `crm_divert` and `crm_pii_hash_<i>`, which `FastPath.attach` registers."""
    return _FastCompiler(plan).sql(lines_relation)


def _unquote(v: str) -> str:
    """The value of JSON string text `v`, which has no escapes on the fast path."""
    return f"substring({v}, 2, length({v}) - 2)"


class _FastCompiler:
    def __init__(self, plan: TrackingPlan):
        self.plan = plan
        self.types = sorted(plan.event_types)
        self.ctx_keys = tuple(plan.context)
        self.slots = pii_slots(plan)
        self.env_rules = {name: {r.column: r for r in envelope_rules(plan.event_types[name])} for name in self.types}
        # A struct's field names are case-insensitive in DuckDB: versions whose keys would clash in
        # the union of all attribute keys stay on the exact path.
        union: dict[str, str] = {}
        self.versions: list[_Version] = []
        for v in _versions(plan):
            if all(union.setdefault(k.lower(), k) == k for k in v.keys):
                self.versions.append(v)
        self.attr_keys = tuple(dict.fromkeys(k for v in self.versions for k in v.keys))

    @staticmethod
    def j(name: str) -> str:
        return f"j_{name}"

    @staticmethod
    def a(key: str) -> str:
        return f'"a_{key}"'

    @staticmethod
    def c(key: str) -> str:
        return f'"c_{key}"'

    def sql(self, lines: str) -> str:
        ctes = [
            ("_fv_src", f"SELECT line_no, raw, try(decode(raw)) AS txt FROM {lines}"),
            ("_fv_screen", self.screen()),
            ("_fv_parse", self.parse()),
            ("_fv_fields", self.fields()),
            ("_fv_checked", self.checked()),
            ("_fv_norm", self.normalized()),
            ("_fv_hashed", self.hashed()),
            ("_fv_out", self.rebuilt()),
        ]
        body = ",\n".join(f"{name} AS (\n{q}\n)" for name, q in ctes)
        return f"""WITH
{body}
SELECT {', '.join(FAST_COLUMNS)} FROM _fv_out
WHERE CASE WHEN fast THEN true ELSE {DIVERT_FUNCTION}(line_no, raw) END"""

    @staticmethod
    def screen() -> str:
        return ("SELECT *, coalesce(starts_with(txt, '{') AND NOT contains(txt, '\\') AND NOT contains(txt, 'NaN') "
                "AND NOT contains(txt, 'Infinity') AND json_valid(txt), false) AS screened FROM _fv_src")

    def parse(self) -> str:
        """One typed parse (every value as its JSON text), and the keys of the three objects."""
        spec = {name: "JSON" for name in ENVELOPE_FIELDS + ("touch",)}
        spec["attributes"] = {k: "JSON" for k in self.attr_keys}
        spec["context"] = {k: "JSON" for k in self.ctx_keys}
        return (f"SELECT line_no, raw, CASE WHEN screened THEN from_json(txt, {_lit(json.dumps(spec))}) END AS e, "
                "CASE WHEN screened THEN json_keys(txt, ['$', '$.attributes', '$.context']) END AS k FROM _fv_screen")

    def fields(self) -> str:
        scalars = [n for n in ENVELOPE_FIELDS if n not in ("attributes", "context")]
        # As VARCHAR: the tests read JSON texts (a JSON-typed '"12"' would cast to the integer 12).
        cols = [f"CAST(e.{n} AS VARCHAR) AS {self.j(n)}" for n in scalars]
        cols += [f'CAST(e.attributes."{k}" AS VARCHAR) AS {self.a(k)}' for k in self.attr_keys]
        cols += [f'CAST(e.context."{k}" AS VARCHAR) AS {self.c(k)}' for k in self.ctx_keys]
        vid = " ".join(
            f"WHEN {_lit(json.dumps(name))} THEN CASE e.schema_version "
            + " ".join(f"WHEN {_lit(json.dumps(v.ev.version))} THEN {v.vid}" for v in self.versions if v.et.event_type == name)
            + " ELSE NULL END" for name in self.types)
        n_env = " + ".join([f"CAST(e.{n} IS NOT NULL AS INTEGER)" for n in scalars]
                           + ["CAST(k[2] IS NOT NULL AS INTEGER)", "CAST(k[3] IS NOT NULL AS INTEGER)"])
        # Top-level keys are envelope fields, each once, no touch; attributes and context (when
        # given) are objects with keys (json_keys gives [] for other values too: take the exact path).
        shape = (f"e.touch IS NULL AND len(k[1]) = {n_env} AND coalesce(len(k[2]) > 0, true) "
                 "AND coalesce(len(k[3]) > 0, true)")
        return (f"SELECT line_no, raw, k, {', '.join(cols)}, CASE WHEN e IS NOT NULL AND {shape} THEN CASE e.event_type {vid} END END AS vid "
                "FROM _fv_parse")

    def checked(self) -> str:
        """Every field certainly passes, and attributes and context hold only keys the version
        extracts, each once."""
        lead, user = self.j("lead_id"), self.j("user_id")
        common, per_type = [], []
        columns = [c for c in next(iter(self.env_rules.values())) if c not in ("touch", "attributes", "context")]
        for column in columns:
            rules = {rs[column] for rs in self.env_rules.values()}
            if len(rules) > 1:
                per_type.append(column)
            else:
                common.append(_pass_sql(rules.pop(), self.j(column)))
        common += [_pass_sql(property_rule("context", spec), self.c(spec.name)) for spec in self.plan.context.values()]
        n_ctx = " + ".join(f"CAST({self.c(k)} IS NOT NULL AS INTEGER)" for k in self.ctx_keys) or "0"
        common.append(f"coalesce(len(k[3]), 0) = {n_ctx}")
        per_vid = {}
        for v in self.versions:
            env = self.env_rules[v.et.event_type]
            tests = [_pass_sql(env[c], self.j(c)) for c in per_type]
            # `lead` is the lead_id rule's `required` (per type above); `none` needs no id.
            if v.et.identity == "lead_or_user":
                tests.append(f"({lead} IS NOT NULL OR {user} IS NOT NULL)")
            n_attr = " + ".join(f"CAST({self.a(k)} IS NOT NULL AS INTEGER)" for k in v.keys) or "0"
            tests.append(f"coalesce(len(k[2]), 0) = {n_attr}")
            tests += [_pass_sql(property_rule("attributes", spec), self.a(spec.name)) for spec in v.ev.properties.values()]
            per_vid[v.vid] = "(" + " AND ".join(tests) + ")"
        return (f"SELECT *, coalesce(vid IS NOT NULL AND {' AND '.join(common)} AND {_by_vid(per_vid, 'false')}, false) AS ok "
                "FROM _fv_fields")

    def final_attributes(self, v: _Version) -> dict[str, str]:
        """key -> JSON text (SQL) of each attribute of a line of `v` after the upgrade, in the order
        of the version's keys; absent ones are NULL."""
        state, _ = _upgrade(v, self.a)
        return {k: state.get(k, self.a(k)) for k in v.keys if state.get(k, self.a(k)) != "NULL"}

    def normalized(self) -> str:
        """As the exact path normalizes: ids unquoted, UTC and offset; and the PII values."""
        occ = self.j("occurred_at")
        cols = [f"CASE WHEN ok THEN {_unquote(self.j(n))} END AS {n}"
                for n in ("event_id", "event_type", "source", "producer_id", "lead_id", "user_id")]
        cols.append(f"CASE WHEN ok THEN {_unquote(self.j('schema_version'))} END AS original_schema_version")
        cols.append(f"CASE WHEN ok THEN {_by_vid({v.vid: _lit(v.et.current.version) for v in self.versions})} END AS schema_version")
        cols.append(f"CASE WHEN ok THEN {_offset_minutes(occ)} END AS occurred_at_offset_minutes")
        cols.append(f"CASE WHEN ok THEN {_local_time(occ)} END AS occurred_local")
        for i, slot in enumerate(self.slots):  # the JSON text of each PII slot's value, if a string
            container, key = slot.split(".", 1)
            if container == "context":
                text = self.c(key)
            else:
                text = _by_vid({v.vid: self.final_attributes(v).get(key, "NULL") for v in self.versions
                                if (spec := v.et.current.properties.get(key)) is not None and spec.pii})
            cols.append(f"CASE WHEN ok AND {_is_string(text)} THEN {text} END AS st{i}")
        cols.append(f"CASE WHEN ok THEN {self.residency()} END AS data_residency")
        keep = ", ".join([self.a(k) for k in self.attr_keys] + [self.c(k) for k in self.ctx_keys])
        return f"SELECT line_no, raw, ok, vid, k, {keep}, {', '.join(cols)} FROM _fv_checked"

    def residency(self) -> str:
        """The event's own residency zone, else the default, as the exact path gives it: the
        context's tag (only when the plan types it: an unplanned context key takes the exact path),
        then the country of the final attributes, then the context's; each a string's text."""
        config = load_residency()

        def text(json_text: str) -> str:  # a string's value, else NULL (no escapes on this path)
            return f"CASE WHEN {_is_string(json_text)} THEN {_unquote(json_text)} END"
        zones = []
        if RESIDENCY in self.ctx_keys:
            zones.append(config.tag_zone_sql(text(self.c(RESIDENCY))))
        country = _by_vid({v.vid: t for v in self.versions if (t := self.final_attributes(v).get("country")) is not None})
        if country != "NULL":
            zones.append(config.country_zone_sql(text(country)))
        if "country" in self.ctx_keys:
            zones.append(config.country_zone_sql(text(self.c("country"))))
        return f"coalesce({', '.join(zones + [_lit(config.default_zone)])})"

    def unknown_tag(self) -> str:
        """A planned context tag that names no zone: such lines take the exact path, which counts them."""
        if RESIDENCY not in self.ctx_keys:
            return "false"
        tag = self.c(RESIDENCY)
        return f"coalesce({load_residency().unknown_tag_sql(f'CASE WHEN {_is_string(tag)} THEN {_unquote(tag)} END')}, false)"

    def hashed(self) -> str:
        cols = "".join(f", CASE WHEN st{i} IS NOT NULL THEN {HASH_FUNCTION}_{i}({_unquote(f'st{i}')}) END AS h{i}"
                       for i in range(len(self.slots)))
        return f"SELECT *{cols} FROM _fv_norm"

    def rebuilt(self) -> str:
        """The attributes and context texts, compact, PII replaced by its hash."""
        slot_of = {slot: i for i, slot in enumerate(self.slots)}

        def members(values: dict[str, str], container: str) -> str:
            parts = []
            for key, text in values.items():
                i = slot_of.get(f"{container}.{key}")
                if i is not None:
                    text = f"CASE WHEN st{i} IS NOT NULL THEN '\"' || h{i} || '\"' ELSE {text} END"
                parts.append(f"{_lit(json.dumps(key) + ':')} || {text}")
            return "'{' || concat_ws(',', " + ", ".join(parts) + ") || '}'" if parts else "'{}'"

        attrs = _by_vid({v.vid: members(self.final_attributes(v), "attributes") for v in self.versions})
        ctx = f"CASE WHEN k[3] IS NOT NULL THEN {members({k: self.c(k) for k in self.ctx_keys}, 'context')} END"
        return f"""SELECT *, ok AND NOT contains(attributes, '@') AND NOT coalesce(contains(context, '@'), false)
        AND NOT {self.unknown_tag()} AS fast,
    occurred_local - INTERVAL (occurred_at_offset_minutes) MINUTE AS occurred_at,
    CAST(occurred_local - INTERVAL (occurred_at_offset_minutes) MINUTE AS DATE) AS event_date
FROM (SELECT *, CASE WHEN ok THEN CAST({attrs} AS JSON) END AS attributes,
             CASE WHEN ok THEN CAST({ctx} AS JSON) END AS context
      FROM _fv_hashed)"""


class DivertedLines:
    """`crm_divert(line_no, raw) -> false`: keeps the lines the fast path does not take, for the
    exact path (a statement has one sink, the events it inserts; these lines leave through here)."""

    def __init__(self) -> None:
        self._batches: list[pa.RecordBatch] = []

    def __call__(self, line_no: pa.Array | pa.ChunkedArray, raw: pa.Array | pa.ChunkedArray) -> pa.Array:
        if len(line_no):
            self._batches.append(pa.RecordBatch.from_arrays([_combined(line_no), _combined(raw).cast(pa.large_binary())],
                                                            schema=LINE_SCHEMA))
        return pa.nulls(len(line_no), pa.bool_()).fill_null(False)

    def take(self) -> pa.Table:
        """The lines kept since the last take, each once, in line order."""
        batches, self._batches = self._batches, []
        table = pa.Table.from_batches(batches, schema=LINE_SCHEMA)
        if table.num_rows:
            _, first = np.unique(table.column("line_no").to_numpy(), return_index=True)
            table = table.take(pa.array(first))
        return table


def _combined(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


class FastPath:
    """The fast path for one plan and key: its SQL, and the two functions it calls, registered on a
    DuckDB connection with `attach`. After each statement, `diverted.take()` gives the lines for the
    exact path and `hasher.drain()` the new vault entries."""

    def __init__(self, plan: TrackingPlan, pii_key: bytes):
        self.plan = plan
        self.hasher = PiiHasher(pii_key, pii_slots(plan))
        self.diverted = DivertedLines()
        self._compiled = _FastCompiler(plan)

    def sql(self, lines_relation: str) -> str:
        return self._compiled.sql(lines_relation)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        functions = [(DIVERT_FUNCTION, self.diverted, [BIGINT, BLOB], BOOLEAN)]
        functions += [(f"{HASH_FUNCTION}_{i}", self.hasher.for_field(field), [VARCHAR], VARCHAR)
                      for i, field in enumerate(self.hasher.fields)]
        for name, fn, params, returns in functions:
            try:
                con.remove_function(name)
            except duckdb.InvalidInputException:
                pass  # not registered yet
            con.create_function(name, fn, params, returns, type="arrow", side_effects=True)
