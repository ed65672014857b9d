"""Event validation inside the engine: the tracking plan compiled to one DuckDB SELECT.

`compile_ingest_sql(plan, lines, pii_key)` returns `(sql, params)`: one SELECT over a relation of
`line_no BIGINT, raw BLOB` (one row per non-blank physical line, raw bytes without the line end, the
file's BOM already stripped) that gives, per input line, the verdict of `crm_platform.plan.validate`
(the same ok, the same reasons in the same order, word for word but for the details of invalid JSON),
the normalized event, and the PII split:

    line_no, ok, reasons VARCHAR[], raw_text (rejected lines; NULL if not UTF-8),
    event_id, event_type, schema_version (current), original_schema_version, occurred_at (UTC),
    occurred_at_offset_minutes, event_date, source, producer_id, lead_id, user_id,
    attributes JSON, context JSON                                   (accepted lines, NULL otherwise)
    pii_values STRUCT(field, hash, value)[]                         (every line)
    redacted_raw                                                    (rejected lines)
    data_residency     the event's own zone, else the default (accepted lines; governance/residency.py)

    sql, params = compile_ingest_sql(plan, "lines", pii_key)
    con.execute(f"create temp table validated as {sql}", params)     # or run_validation(...)

Semantics. The rules are the pandera path's (`rules.version_rules` / `rules.rule_checks`) written as
SQL: per field one CASE yielding at most one failure (the checks are exclusive by construction, see
rules.py), in the reference's column order, worded by `rules.describe`; the regexes are formats.py's
bodies, run by RE2 as with pyarrow. Records are normalized like `validate._merged_attributes`
(attributes win, then `touch`, then the top level; a null never overrides a value; the last of
repeated keys wins, as with Python's json) and upgraded by the plan's migrations
(`migrate.upgrade_attributes`: rename, default, drop), unplanned properties kept. occurred_at is
the local date-time minus its offset, as a naive UTC TIMESTAMP (fractions beyond microseconds are
truncated); the offset is kept in minutes.

How. A line is parsed three times in full: `json_valid` (see below), one `json_extract` with the
list of envelope paths (and the context's fields), one `json_keys` for the number of top-level keys
(more keys than envelope fields present means top-level properties, `touch` or repeated keys: the
slow path, which merges the layers with `json_merge_patch` and maps). Attributes are re-parsed
small, with only the line's (type, version) paths. Then one conjunction of cheap tests per version
says whether every field certainly passes (strings as their JSON text: quoted regexes, `IN ('"a"',
...)`, byte lengths); only the lines that fail it get the exact per-field CASEs and their messages.
Everything rare (escapes, repeated keys, migrations that touch present keys, rejected lines'
redaction) sits in CASE branches, which DuckDB evaluates only for the rows that reach them. Two
DuckDB traits shape the SQL: `try()` re-runs a whole vector row by row once one of its rows fails
(so JSON is checked with `json_valid` first), and a lambda with a large body is several times slower
than the same expression outside one (so the hot paths have none).

Cost (benchmarks/bench_sql_validation.py, 2 cores): about 7.5 s per million lines of a mixed file
(every type, old versions, touch objects, 1% invalid), ~0.3x the rate of DuckDB's read_json of it;
a rejected line costs about ten accepted ones (messages, redaction). The ingest runs it only on the
lines the fast path (`fast_validation`) diverts: invalid ones and valid ones in unusual shapes.
Planning the statement takes ~0.15 s (~100 kB of SQL).

JSON strictness. DuckDB's reader (yyjson) also takes NaN/Infinity literals (any case) and trailing
commas, which Python's json rejects (invalid_json). Lines containing `NaN` or `Infinity` (what real
serializers write) get an exact check: string literals blanked out, then the literals and trailing
commas searched. Left alone, accepted where the reference says invalid_json: other spellings (`nan`,
`inf`, `INF`...) outside planned numeric fields, trailing commas in lines without those words, and
nesting deeper than Python's recursion limit. Repeated keys deeper than the top level of attributes,
context and touch are kept as written.

PII. Every property that is `pii: true` in the event type's CURRENT version, every `pii: true`
context field, and, as defence in depth, any other string value at the top level of attributes or
context that contains an e-mail address, is replaced by `pii:` + the first 32 hex digits of
HMAC-SHA256(key, UTF-8 value): 128 bits, no collision in sight at any vault size (2^64 values for a
50% chance), half the width of the full digest in every table and index, and stable across runs, so
joins and de-duplication work on the hash. The HMAC is computed in SQL, SHA256((k^opad) ||
SHA256((k^ipad) || m)), from the key's pads passed as prepared parameters (`$pii_ipad`,
`$pii_opad`), never as SQL text; context values (an IP recurs on every event of a visitor) are
hashed once per distinct value (the rows are materialized once and joined to their hashes). The
clear values come out in `pii_values` (field `attributes.<name>`, `context.<name>`, or `raw_record`
for the redacted text of a rejected line). A rejected line's `redacted_raw` is the line (decoded
with U+FFFD for bytes that are not UTF-8) with every e-mail-looking substring and phone-looking run
(7 or more digits with separators, optional + or (, not a date or schema version) replaced by its
hash; its reasons are redacted the same way (a reason may quote a value that is not planned as PII).

Portability. Plain SQL where it can be (CASE, COALESCE, CAST, SUBSTRING, joins, CTEs), but these
are DuckDB's: `try`, `decode`/`encode`/`hex`/`unhex`, `starts_with`/`ends_with`/`contains`/`strlen`,
`json_extract` and `json_keys` with lists of paths, `json_extract_string`, `json_set`/`json_remove`,
`regexp_full_match`/`regexp_matches`/`regexp_extract_all`, lambdas (`list_filter`,
`list_transform`, `list_reduce`) and list functions, `map`/`to_json`, `sha256` of a BLOB, struct
literals, `INTERVAL (n) MINUTE`, `MATERIALIZED` CTEs and `SELECT * EXCLUDE`. A ClickHouse port
maps them to JSONExtract*, arrayFilter/arrayMap, match/extractAll, SHA256 and so on (SQLGlot does
part of it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from crm_platform.governance.residency import load_config as load_residency
from crm_platform.plan.formats import (
    EMAIL_BODY,
    ENVELOPE_FIELDS,
    NAIVE_TIMESTAMP_BODY,
    STRING_TYPES,
    TIMESTAMP_BODY,
    URL_BODY,
)
from crm_platform.plan.model import EventType, EventVersion, TrackingPlan
from crm_platform.plan.rules import FieldRule, envelope_rules, property_rule

__all__ = [
    "HASH_HEX_CHARS", "HASH_PREFIX", "OUTPUT_COLUMNS", "compile_ingest_sql", "hmac_pads", "pii_hash",
    "run_validation",
]

HASH_PREFIX = "pii:"
HASH_HEX_CHARS = 32  # 128 bits of the HMAC-SHA256
_BLOCK = 64

OUTPUT_COLUMNS: tuple[str, ...] = (
    "line_no", "ok", "reasons", "raw_text", "event_id", "event_type", "schema_version",
    "original_schema_version", "occurred_at", "occurred_at_offset_minutes", "event_date", "source",
    "producer_id", "lead_id", "user_id", "attributes", "context", "pii_values", "redacted_raw", "data_residency",
)

# --- keyed hashing -------------------------------------------------------------------------------


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(key ^ ipad, key ^ opad) of HMAC-SHA256 (RFC 2104, 64-byte blocks)."""
    if not key:
        raise ValueError("the PII key must not be empty")
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pii_hash(key: bytes, value: str) -> str:
    """The stored form of one PII value, computed in Python (the SQL computes the same)."""
    return HASH_PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]


def _hmac_sql(value: str) -> str:
    """`pii:` + 32 hex digits of HMAC-SHA256 of VARCHAR `value`, from the parameter pads."""
    inner = f"unhex(sha256($pii_ipad || encode({value})))"
    return f"('{HASH_PREFIX}' || left(sha256($pii_opad || {inner}), {HASH_HEX_CHARS}))"


# --- SQL text helpers ----------------------------------------------------------------------------


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _lits(values) -> str:
    return ", ".join(_lit(v) for v in values)


def _json_text(value: Any) -> str:
    """How DuckDB's JSON writer spells a plain value (compact, UTF-8 kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _path(key: str) -> str:
    return "$." + json.dumps(key)  # '$."name"': any key, quoted


_WS = "chr(32) || chr(9) || chr(13) || chr(10)"
_ENV_INDEX = {name: i + 1 for i, name in enumerate(ENVELOPE_FIELDS + ("touch",))}
_TOP_PATHS = "[" + ", ".join(_lit(_path(f)) for f in ENVELOPE_FIELDS + ("touch",)) + "]"
_NOT_PROPERTY = ENVELOPE_FIELDS + ("touch",)

# Strict-JSON screen: the lenient spellings DuckDB's reader accepts that real producers write.
_SUSPECT_TOKENS = ("NaN", "Infinity")
# String literals of valid JSON, to blank them before looking for bare tokens.
_JSON_STRING_RE = r'"(?:[^"\\]|\\.)*"'

# Redaction: e-mail-looking (a superset of formats.EMAIL_BODY, searched) and phone-looking runs
# (group 2; the prefix keeps times, decimals and hash digits out).
# Non-ASCII letters count (internationalized addresses, and U+FFFD where a Latin-1 byte was).
_EMAIL_FIND = (r"[A-Za-z0-9\x{80}-\x{10FFFF}][A-Za-z0-9.!#$%&'*+/=?^_`{|}~\x{80}-\x{10FFFF}-]*"
               r"@[A-Za-z0-9\x{80}-\x{10FFFF}](?:[A-Za-z0-9\x{80}-\x{10FFFF}-]*[A-Za-z0-9\x{80}-\x{10FFFF}])?"
               r"(?:\.[A-Za-z0-9\x{80}-\x{10FFFF}](?:[A-Za-z0-9\x{80}-\x{10FFFF}-]*[A-Za-z0-9\x{80}-\x{10FFFF}])?)+")
_PHONE_FIND = r"(^|[^0-9A-Za-z_.:/])(\+?\(?[0-9][0-9 ().-]{5,}[0-9])"
# Digit runs that are dates or schema versions (YYYY-MM-DD, YYYY-MM-N), not phone numbers.
_NOT_PHONE = r"[0-9]{4}-[0-9]{1,2}(?:-[0-9]{1,2})?"

# Valid UTF-8 sequences as uppercase hex (RFC 3629), and any other byte: the tokens of a lossy decode.
_UTF8_VALID = (
    "(?:[0-7][0-9A-F])+|(?:C[2-9A-F]|D[0-9A-F])[89AB][0-9A-F]|E0[AB][0-9A-F][89AB][0-9A-F]"
    "|E[1-9A-CEF][89AB][0-9A-F][89AB][0-9A-F]|ED[89][0-9A-F][89AB][0-9A-F]"
    "|F0(?:9[0-9A-F]|[AB][0-9A-F])[89AB][0-9A-F][89AB][0-9A-F]"
    "|F[1-3][89AB][0-9A-F][89AB][0-9A-F][89AB][0-9A-F]|F48[0-9A-F][89AB][0-9A-F][89AB][0-9A-F]"
)
_UTF8_TOKEN = f"{_UTF8_VALID}|[0-9A-F]{{2}}"

_EXPECTED = {
    "string": "a string", "timestamp": "a timestamp string", "enum": "a string", "email": "a string",
    "url": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "json": "an object or an array", "object": "an object",
}


def _unescape(v: str) -> str:
    """The VARCHAR of JSON string text `v` (DuckDB re-serializes strings, so only \\", \\\\ and
    control characters are ever escaped)."""
    return f"(CASE WHEN contains({v}, '\\') THEN json_extract_string({v}, '$') ELSE substring({v}, 2, length({v}) - 2) END)"


def _is_string(v: str) -> str:
    return f"starts_with({v}, '\"')"


def _kind(v: str) -> str:
    """JSON type name of value text `v`, as validate's messages name it."""
    return (f"(CASE WHEN starts_with({v}, '\"') THEN 'string' WHEN starts_with({v}, '{{') THEN 'object' "
            f"WHEN starts_with({v}, '[') THEN 'array' WHEN {v} IN ('true', 'false') THEN 'boolean' "
            f"WHEN {v} = 'null' THEN 'null' WHEN regexp_full_match({v}, '-?[0-9]+') THEN 'integer' ELSE 'number' END)")


def _num(v: str) -> str:
    """DOUBLE of number text `v` (beyond the double range +-inf, as validate's float64 view)."""
    return f"try_cast({v} AS DOUBLE)"


def _is_num(v: str) -> str:
    return f"regexp_full_match({v}, '-?[0-9][0-9.eE+-]*')"


def _type_ok(t: str, v: str) -> str:
    if t in STRING_TYPES:
        return _is_string(v)
    if t == "integer":  # an integer token, or a float with no fractional part (JSON Schema)
        return (f"(regexp_full_match({v}, '-?[0-9]+') OR ({_is_num(v)} AND isfinite({_num(v)}) "
                f"AND {_num(v)} = floor({_num(v)})))")
    if t == "number":
        return _is_num(v)
    if t == "boolean":
        return f"{v} IN ('true', 'false')"
    if t == "json":
        return f"(starts_with({v}, '{{') OR starts_with({v}, '['))"
    if t == "object":
        return f"starts_with({v}, '{{')"
    raise ValueError(f"no type rule for {t!r}")


def _str(v: str) -> str:
    """The VARCHAR of JSON string text `v`, for the rare paths (escapes, messages)."""
    return f"json_extract_string({v}, '$')"


def _slow_match(v: str, body: str) -> str:
    """String value text `v` matches regex `body` in full (RE2), on the unescaped value."""
    return f"regexp_full_match({_str(v)}, {_lit(body)})"


def _show(v: str) -> str:
    """rules.show of a string value: quoted, at most 40 characters then an ellipsis."""
    s = _str(v)
    return f"('''' || CASE WHEN length({s}) > 40 THEN left({s}, 40) || '\u2026' ELSE {s} END || '''')"


def _offset_minutes(ts: str) -> str:
    """The UTC offset in minutes of valid timestamp text `ts` (quoted, ASCII, no escapes)."""
    return (f"CASE WHEN ends_with({ts}, 'Z\"') THEN 0 ELSE "
            f"(CASE WHEN substring({ts}, strlen({ts}) - 6, 1) = '-' THEN -1 ELSE 1 END) * "
            f"(CAST(substring({ts}, strlen({ts}) - 5, 2) AS INTEGER) * 60 + "
            f"CAST(substring({ts}, strlen({ts}) - 2, 2) AS INTEGER)) END")


def _local_time(ts: str) -> str:
    """The local date-time of valid timestamp text `ts`, the fraction truncated to microseconds (the
    offset comes off later)."""
    return (f"CAST(substring({ts}, 2, strlen({ts}) - CASE WHEN ends_with({ts}, 'Z\"') THEN 3 ELSE 8 END) "
            "AS TIMESTAMP)")


def _calendar_ok(v: str) -> str:
    """For timestamp text `v` (quoted, format already checked): a real date, year 1 or later."""
    return (f"(substring({v}, 2, 4) <> '0000' AND (substring({v}, 10, 2) <= '28' OR "
            f"try_cast(substring({v}, 2, 10) AS DATE) IS NOT NULL))")


# TIMESTAMP_BODY (quoted) restricted to years 0001-9999 and to the days every such month has (all but
# 29 February): a real date without asking.
_FAST_DATE = ("(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
              "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)")
_FAST_TIMESTAMP = '"' + TIMESTAMP_BODY.replace("[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])", _FAST_DATE, 1) + '"'
assert _FAST_DATE in _FAST_TIMESTAMP

_SEP = "\x1f"  # between the parts of a failure code (a control character: never in plan text)


def _failure(code: str, rule: FieldRule, arg: str = "", quote: bool = False) -> str:
    """A failure as a SQL literal: code, column, argument and whether the value may be quoted in
    the message (never for PII), separated by `_SEP`; `_message_sql` renders it."""
    return _lit(_SEP.join((code, rule.column, arg, "1" if quote and not rule.pii else "")))


def _pass_sql(rule: FieldRule, v: str) -> str:
    """A cheap test that value text `v` certainly passes `rule` (false: look closer with
    `_fail_sql`). Conservative: escapes, non-ASCII strings near the length bound and odd numbers
    take the close look; NULL counts as false."""
    if rule.type == "timestamp":  # the pattern implies a string of bounded length
        full = _lit(chr(34) + "(?:" + TIMESTAMP_BODY + ")" + chr(34))
        # CASE, not OR: the second test runs only for the lines the first one leaves (29 February).
        ok = [f"(CASE WHEN regexp_full_match({v}, {_lit(_FAST_TIMESTAMP)}) THEN true "
              f"ELSE regexp_full_match({v}, {full}) AND {_calendar_ok(v)} END)"]
    elif rule.type in STRING_TYPES:
        ok = [f"starts_with({v}, '\"')"]
        if rule.values is not None and rule.max_length is not None and max(map(len, rule.values)) <= rule.max_length \
                and all(x == json.loads(_json_text(x)) and "\\" not in _json_text(x) for x in rule.values):
            ok = [f"{v} IN ({_lits(_json_text(x) for x in rule.values)})"]
        else:
            if rule.nonempty:  # a JSON string of at least 3 characters is not ""
                ok.append(f"strlen({v}) BETWEEN 3 AND {rule.max_length + 2}" if rule.max_length is not None
                          else f"strlen({v}) >= 3")
            elif rule.max_length is not None:
                ok.append(f"strlen({v}) <= {rule.max_length + 2}")
            if rule.values is not None:
                ok.append(f"{v} IN ({_lits(_json_text(x) for x in rule.values)})")
        body = {"email": EMAIL_BODY, "url": URL_BODY}.get(rule.type)
        if body is not None:
            ok = ok[1:]  # the pattern implies a string
            ok.append(f"regexp_full_match({v}, {_lit(chr(34) + '(?:' + body + ')' + chr(34))})")
    elif rule.type == "integer":
        ok = [f"try_cast({v} AS BIGINT) = try_cast({v} AS DOUBLE)"]
        if rule.minimum is not None:
            ok.append(f"try_cast({v} AS BIGINT) >= {rule.minimum!r}")
        if rule.maximum is not None:
            ok.append(f"try_cast({v} AS BIGINT) <= {rule.maximum!r}")
    elif rule.type == "number":
        ok = [f"isfinite(try_cast({v} AS DOUBLE))"]
        if rule.minimum is not None:
            ok.append(f"try_cast({v} AS DOUBLE) >= {rule.minimum!r}")
        if rule.maximum is not None:
            ok.append(f"try_cast({v} AS DOUBLE) <= {rule.maximum!r}")
    else:
        ok = [_type_ok(rule.type, v)]
    present = " AND ".join(ok)
    if rule.required:
        return f"({present})"
    if rule.container == "attributes":  # a null property is rare: let it take the close look
        return f"({v} IS NULL OR ({present}))"
    return f"({v} IS NULL OR {v} = 'null' OR ({present}))"


def _fail_sql(rule: FieldRule, v: str) -> str:
    """One CASE: the failed check of value text `v` (NULL when absent) as a `_failure`, or NULL
    when the value passes. Mirrors rules.rule_checks: exclusive checks, in their order."""
    parts = []
    if rule.required:
        parts.append(f"WHEN {v} IS NULL THEN {_failure('missing_required', rule)} "
                     f"WHEN {v} = 'null' THEN {_failure('null_required', rule)}")
    else:
        parts.append(f"WHEN {v} IS NULL OR {v} = 'null' THEN NULL")
    parts.append(f"WHEN NOT {_type_ok(rule.type, v)} THEN {_failure('wrong_type', rule, _EXPECTED[rule.type])}")
    if rule.nonempty:
        parts.append(f"WHEN {v} = '\"\"' THEN {_failure('empty_value', rule)}")
    if rule.max_length is not None:
        n = rule.max_length
        parts.append(f"WHEN strlen({v}) - 2 > {n} AND length({_str(v)}) > {n} THEN {_failure('too_long', rule, str(n))}")
    if rule.values is not None:
        parts.append(f"WHEN {_str(v)} NOT IN ({_lits(rule.values)}) THEN "
                     f"{_failure(rule.enum_code, rule, ', '.join(rule.values), quote=True)}")
    if rule.minimum is not None:
        parts.append(f"WHEN {_num(v)} < {rule.minimum!r} THEN {_failure('below', rule, str(rule.minimum), quote=True)}")
    if rule.maximum is not None:
        parts.append(f"WHEN {_num(v)} > {rule.maximum!r} THEN {_failure('above', rule, str(rule.maximum), quote=True)}")
    if rule.type == "timestamp":
        parts.append(f"WHEN {_slow_match(v, TIMESTAMP_BODY)} THEN CASE WHEN {_calendar_ok(v)} THEN NULL ELSE "
                     f"{_failure('not_a_date', rule, quote=True)} END "
                     f"WHEN {_slow_match(v, NAIVE_TIMESTAMP_BODY)} THEN {_failure('naive_timestamp', rule)} "
                     f"ELSE {_failure('invalid_timestamp', rule)}")
    elif rule.type == "email":
        parts.append(f"WHEN NOT {_slow_match(v, EMAIL_BODY)} THEN {_failure('invalid_email', rule)}")
    elif rule.type == "url":
        parts.append(f"WHEN NOT {_slow_match(v, URL_BODY)} THEN {_failure('invalid_url', rule)}")
    return "(CASE " + " ".join(parts) + " END)"


def _message_sql(f: str, v: str, allowed: str) -> str:
    """`code: detail` in rules.describe's words for `_failure` text `f` of value text `v`;
    `allowed` is the SQL of the row type's allowed sources, as text."""
    def part(i: int) -> str:
        return f"split_part({f}, chr(31), {i})"

    col, arg = part(2), part(3)
    quoted = f"CASE WHEN {part(4)} = '1' THEN ' ' || {_show(v)} ELSE '' END"
    number = f"CASE WHEN {part(4)} = '1' THEN ' ' || {v} ELSE '' END"
    return f"""CASE {part(1)}
        WHEN 'missing_required' THEN 'missing_required: ' || {col} || ' is required'
        WHEN 'null_required' THEN 'null_required: ' || {col} || ' is null'
        WHEN 'missing_identity' THEN 'missing_required: lead_id or user_id is required for ' || s_et
        WHEN 'null_identity' THEN 'null_required: lead_id or user_id is required for ' || s_et
        WHEN 'wrong_type' THEN 'wrong_type: ' || {col} || ' must be ' || {arg} || ', got ' || {_kind(v)}
        WHEN 'empty_value' THEN 'empty_value: ' || {col} || ' is empty'
        WHEN 'too_long' THEN 'too_long: ' || {col} || ' has ' || length({_str(v)}) || ' characters (max ' || {arg} || ')'
        WHEN 'enum_violation' THEN 'enum_violation: ' || {col} || {quoted} || ' is not one of: ' || {arg}
        WHEN 'source_not_allowed' THEN 'source_not_allowed: source' || {quoted} || ' is not allowed for ' || s_et
            || ' (allowed: ' || {allowed} || ')'
        WHEN 'below' THEN 'out_of_range: ' || {col} || {number} || ' is below the minimum ' || {arg}
        WHEN 'above' THEN 'out_of_range: ' || {col} || {number} || ' is above the maximum ' || {arg}
        WHEN 'naive_timestamp' THEN 'naive_timestamp: ' || {col} || ' has no UTC offset (end it with Z or +HH:MM)'
        WHEN 'not_a_date' THEN 'invalid_timestamp: ' || {col} || {quoted} || ' is not a real date'
        WHEN 'invalid_timestamp' THEN 'invalid_timestamp: ' || {col}
            || ' is not an ISO 8601 date-time like 2026-01-10T15:12:30Z'
        WHEN 'invalid_email' THEN 'invalid_email: ' || {col} || ' is not a valid email address'
        WHEN 'invalid_url' THEN 'invalid_url: ' || {col} || ' is not an absolute http(s) URL'
    END"""


# --- per (event type, version) -------------------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    vid: int
    et: EventType
    ev: EventVersion
    keys: tuple[str, ...]  # attribute keys extracted for this version, in `pv` order

    def pv(self, key: str) -> str:
        """The column holding the JSON text of attribute `key` (see _Compiler.values)."""
        return f"p{self.keys.index(key) + 1}"


def _versions(plan: TrackingPlan) -> list[_Version]:
    out = []
    for vid, (et, ev) in enumerate(plan.iter_versions(), 1):
        keys = list(ev.properties)
        for later in et.versions_after(ev.version):
            for m in later.migrations:
                keys += [k for k in (m.property, m.to) if k]
        keys += [name for name, spec in et.current.properties.items() if spec.pii]
        out.append(_Version(vid, et, ev, tuple(dict.fromkeys(keys))))
    return out


def _upgrade(ver: _Version, col: Callable[[str], str] | None = None) -> tuple[dict[str, str | None], list[str]]:
    """The migrations to the current version as symbolic values: key -> SQL of its JSON text after
    the upgrade (NULL: absent), for every key a migration touches; and those keys in order. `col`
    names the column holding a key's JSON text in the line (default: `ver.pv`)."""
    state: dict[str, str | None] = {}
    touched: list[str] = []
    col = col or ver.pv

    def cur(key: str) -> str:
        return state[key] if key in state else col(key)

    for later in ver.et.versions_after(ver.ev.version):
        for m in later.migrations:
            touched += [k for k in (m.property, m.to) if k and k not in touched]
            if m.op == "rename":
                src, dst = cur(m.property), cur(m.to)
                state[m.to] = src if dst == "NULL" else f"coalesce({src}, {dst})" if src != "NULL" else dst
                state[m.property] = "NULL"
            elif m.op == "default":
                value = cur(m.property)
                default = _lit(_json_text(m.value))
                state[m.property] = (default if value == "NULL" else
                                     f"(CASE WHEN {value} IS NULL OR {value} = 'null' THEN {default} ELSE {value} END)")
            elif m.op == "drop":
                state[m.property] = "NULL"
    return state, touched


def _upgraded_attrs(ver: _Version) -> str | None:
    """`attrs_json` of an ok line of `ver` upgraded to the current version, from the line's value
    columns (`ver.pv`); None when there is nothing to do."""
    if ver.ev.version == ver.et.current.version:
        return None
    state, touched = _upgrade(ver)
    changed = [k for k in touched if state.get(k, ver.pv(k)) != ver.pv(k)]
    if not changed:
        return None
    # Common case: no touched key is in the line, so at most defaults are appended.
    absent = " AND ".join(f"{ver.pv(k)} IS NULL" for k in touched)
    appended = []
    for k in changed:
        final = state[k]
        for other in touched:
            final = re.sub(rf"\b{ver.pv(other)}\b", "NULL", final)
        if final != "NULL":
            appended.append(f"coalesce({_lit(',' + _json_text(k) + ':')} || ({final}), '')")
    if appended:
        tail = " || ".join(appended)
        fast = (f"(CASE WHEN attrs_json = '{{}}' THEN '{{' || ltrim({tail}, ',') || '}}' "
                f"ELSE substring(attrs_json, 1, length(attrs_json) - 1) || {tail} || '}}' END)")
    else:
        fast = "attrs_json"
    ops = ", ".join(f"{{'p': {_lit(_path(k))}, 'v': {state[k]}, 'i': {ver.pv(k)}}}" for k in changed)
    general = (f"list_reduce(list_filter([{ops}], lambda _o: _o.v IS DISTINCT FROM _o.i), "
               f"lambda _a, _o: CASE WHEN _o.v IS NULL THEN json_remove(_a, _o.p) "
               f"ELSE json_set(_a, _o.p, CAST(_o.v AS JSON)) END, attrs_json)")
    same = " AND ".join(f"({state[k]}) IS NOT DISTINCT FROM {ver.pv(k)}" for k in changed)
    return f"(CASE WHEN {same} THEN attrs_json WHEN {absent} THEN {fast} ELSE {general} END)"


def _attr_pii_value(ver: _Version, key: str) -> str:
    """The JSON text of current-version PII property `key` of a line of `ver`, after the upgrade."""
    if ver.ev.version == ver.et.current.version:
        return ver.pv(key)
    state, _ = _upgrade(ver)
    return state.get(key, ver.pv(key))


def _by_vid(exprs: dict[int, str], default: str = "NULL") -> str:
    """CASE on the version id `vid`; versions with the same expression share a branch (smaller SQL,
    which DuckDB plans faster)."""
    if not exprs:
        return default
    groups: dict[str, list[int]] = {}
    for vid, e in exprs.items():
        groups.setdefault(e, []).append(vid)
    whens = " ".join(f"WHEN vid = {vids[0]} THEN {e}" if len(vids) == 1 else
                     f"WHEN vid IN ({', '.join(map(str, vids))}) THEN {e}" for e, vids in groups.items())
    return f"(CASE {whens} ELSE {default} END)"


def _dedupe(keys: str, values: str) -> str:
    """[{k, v}] of parallel key/value lists, one entry per key, the last one winning (as a
    Python dict built from JSON does)."""
    return (f"list_filter(list_transform(range(1, len({keys}) + 1), lambda _i: {{'k': {keys}[_i], 'v': {values}[_i]}}), "
            f"lambda _x, _i: NOT list_contains({keys}[_i + 1:], _x.k))")


def _entries(obj: str) -> str:
    """Deduplicated [{k, v}] of JSON object text `obj` (empty when not an object)."""
    bound = f"[{{'k': json_keys({obj}), 'v': json_extract({obj}, '$.*')}}]"
    return (f"(CASE WHEN starts_with({obj}, '{{') THEN list_transform({bound}, lambda _kv: "
            f"{_dedupe('_kv.k', '_kv.v')})[1] ELSE [] END)")


def _object(entries: str) -> str:
    """Compact JSON object text of deduplicated [{k, v}] `entries`."""
    return (f"list_transform([{entries}], lambda _m: CAST(to_json(map(list_transform(_m, lambda _x: _x.k), "
            f"list_transform(_m, lambda _x: CAST(_x.v AS JSON)))) AS VARCHAR))[1]")


# --- the statement -------------------------------------------------------------------------------


def compile_ingest_sql(plan: TrackingPlan, lines_relation: str, pii_key: bytes, *,
                       raw_text_of_ok_rows: bool = False, dedupe_ctx_hashes: bool = True) -> tuple[str, dict[str, bytes]]:
    """(SELECT, parameters) validating and normalizing the lines of `lines_relation`.

    `lines_relation` is anything that can follow FROM (a table, a view, a parenthesized subquery)
    with columns `line_no BIGINT, raw BLOB`; it is scanned once. The parameters carry the HMAC key
    pads (`$pii_ipad`, `$pii_opad`): pass them with the SQL (`con.execute(sql, params)`); the key
    never appears in the SQL text. `raw_text` is the decoded line of the rejected lines (their replay
    payload); accepted lines carry their normalized columns, so theirs is NULL unless
    `raw_text_of_ok_rows` (it costs a copy of every line)."""
    ipad, opad = hmac_pads(pii_key)
    sql = _Compiler(plan, raw_text_of_ok_rows, dedupe_ctx_hashes).sql(lines_relation)
    # The event's own residency zone (an explicit tag, else its country), else the default: the
    # ingest fills in the zone of the lead afterwards (crm_platform/governance/residency.py).
    residency = load_residency()
    sql = (f"SELECT *, CASE WHEN ok THEN coalesce({residency.own_zone_sql('attributes', 'context')}, "
           f"{_lit(residency.default_zone)}) END AS data_residency FROM ({sql})")
    return sql, {"pii_ipad": ipad, "pii_opad": opad}


def pii_field_names(plan: TrackingPlan) -> tuple[str, ...]:
    """Every property name that is PII in some version of some event type, and the PII context fields:
    the members a rejected line's redaction hashes by name."""
    return tuple(sorted({k for _, v in plan.iter_versions() for k, s in v.properties.items() if s.pii}
                        | {k for k, s in plan.context.items() if s.pii}))


def compile_redaction_sql(relation: str, pii_key: bytes, pii_names: tuple[str, ...] = ()) -> tuple[str, dict[str, bytes]]:
    """(SELECT, parameters) redacting records that never became events (a malformed CDC message, a
    broken export row): over `relation` (line_no, raw BLOB, reason), each record's text and reason
    with e-mail- and phone-looking runs and the string values of members named in `pii_names`
    replaced by their hashes, as for a rejected line, and the clear values for the vault: line_no,
    redacted_raw, reason, pii_values."""
    ipad, opad = hmac_pads(pii_key)
    red = _Compiler.redact
    sql = f"""SELECT line_no, {red('src', 'red')} AS redacted_raw, {red('reason', 'red')} AS reason,
    list_transform(red, lambda _p: {{'field': 'raw_record', 'hash': _p.hash, 'value': _p.value}}) AS pii_values
FROM (SELECT *, {_Compiler.redaction_pairs(pii_names)} AS red
      FROM (SELECT line_no, raw, reason, false AS ok, coalesce(try(decode(raw)), {_Compiler.lossy()}) AS src,
                   src || chr(10) || reason AS red_src FROM {relation}))"""
    return sql, {"pii_ipad": ipad, "pii_opad": opad}


def run_validation(con, plan: TrackingPlan, lines_relation: str, pii_key: bytes,
                   table: str = "validated", *, temp: bool = True, raw_text_of_ok_rows: bool = False) -> str:
    """`create or replace [temp] table <table> as` the validation of `lines_relation` on DuckDB
    connection `con` (inside the caller's transaction, if one is open); returns the table name."""
    sql, params = compile_ingest_sql(plan, lines_relation, pii_key, raw_text_of_ok_rows=raw_text_of_ok_rows)
    con.execute(f"create or replace {'temp ' if temp else ''}table {table} as {sql}", params)
    return table


class _Compiler:
    """Builds the statement: a chain of CTEs, each one projection over the previous (DuckDB
    evaluates each select list once per row, so a value used by many checks is computed once).
    The common lines take the cheap branches of CASE expressions; DuckDB evaluates a branch only
    for the rows that reach it."""

    def __init__(self, plan: TrackingPlan, raw_text_of_ok_rows: bool, dedupe_ctx_hashes: bool = True):
        self.plan = plan
        self.keep_raw = raw_text_of_ok_rows
        self.dedupe_ctx = dedupe_ctx_hashes
        self.versions = _versions(plan)
        self.types = sorted(plan.event_types)
        self.ctx_keys = tuple(plan.context)
        self.ctx_pii = tuple(k for k, spec in plan.context.items() if spec.pii)
        self.pii_names = pii_field_names(plan)
        self.attr_pii = {v.vid: tuple(k for k, s in v.et.current.properties.items() if s.pii) for v in self.versions}
        self.n_attr_slots = max((len(p) for p in self.attr_pii.values()), default=0)
        self.n_keys = max((len(v.keys) for v in self.versions), default=0)
        self.n_props = max((len(v.ev.properties) for v in self.versions), default=0)
        self.env_rules = {name: {r.column: r for r in envelope_rules(plan.event_types[name])} for name in self.types}
        self.env_columns = tuple(next(iter(self.env_rules.values())))

    # -- names ---------------------------------------------------------------------------------

    @staticmethod
    def j(name: str) -> str:
        """JSON text of envelope field `name` (after top-level de-duplication); NULL if absent."""
        return f"j_{name}"

    def cx(self, key: str) -> str:
        """JSON text of context field `key`."""
        return f"cx{self.ctx_keys.index(key) + 1}"

    @staticmethod
    def p(ver: _Version, key: str) -> str:
        """JSON text of attribute `key` of a line of version `ver`."""
        return ver.pv(key)

    @staticmethod
    def by_vid(exprs: dict[int, str], default: str = "NULL") -> str:
        return _by_vid(exprs, default)

    # -- the statement -------------------------------------------------------------------------

    def sql(self, lines: str) -> str:
        ctes = [
            ("_iv_src", f"SELECT line_no, raw, try(decode(raw)) AS raw_text FROM {lines}"),
            ("_iv_txt", ("SELECT line_no, raw, raw_text, CASE WHEN starts_with(raw_text, chr(65279)) "
                         "THEN substring(raw_text, 2) ELSE raw_text END AS txt FROM _iv_src")),
            ("_iv_parse", self.parse()),
            ("_iv_top", self.top()),
            ("_iv_env", self.envelope()),
            ("_iv_head", self.header()),
            ("_iv_layers", self.layers()),
            ("_iv_merged", self.merged()),
            ("_iv_extract", self.extract()),
            ("_iv_dedup", self.dedup()),
            ("_iv_values", self.values()),
            ("_iv_fast", self.fast()),
            ("_iv_codes", self.codes()),
            ("_iv_verdict", self.verdict()),
            ("_iv_out", self.normalized()),
            *self.hashes(),
        ]
        body = ",\n".join(f"{name} AS {'MATERIALIZED ' if name == '_iv_rows' else ''}(\n{q}\n)" for name, q in ctes)
        return f"WITH\n{body}\n{self.final()}"

    def parse(self) -> str:
        """Two full parses: the envelope as JSON texts, and the number of top-level keys (a line
        with more keys than envelope fields present has properties at the top level, `touch` or
        repeated keys: the slow path). And a cheap screen for NaN/Infinity literals."""
        suspect = " OR ".join(f"contains(txt, {_lit(t)})" for t in _SUSPECT_TOKENS)
        n_env = " + ".join(f"CAST(e[{i}] IS NOT NULL AS INTEGER)" for i in range(1, len(ENVELOPE_FIELDS) + 1))
        paths = _TOP_PATHS[:-1] + "".join(f", {_lit('$.context.' + json.dumps(k))}" for k in self.ctx_keys) + "]"
        return f"""SELECT *, coalesce(nk_top <> n_env, false) AS top_slow
FROM (SELECT *, CASE WHEN e IS NOT NULL THEN len(json_keys(txt)) END AS nk_top, {n_env} AS n_env
      FROM (SELECT line_no, raw, raw_text, txt, ({suspect}) AS sus,
                   -- not try(): on error it re-runs the whole vector row by row (with 1% bad lines, all of them)
                   CASE WHEN json_valid(txt) THEN CAST(json_extract(txt, {paths}) AS VARCHAR[]) END AS e
            FROM _iv_txt))"""

    def top(self) -> str:
        """The slow lines: repeated top-level keys (rare: every key and value, the last winning),
        or top-level properties (the object without its envelope and touch keys)."""
        patch = _lit(json.dumps({k: None for k in _NOT_PROPERTY}, separators=(",", ":")))
        touch = _ENV_INDEX["touch"]
        return f"""SELECT * EXCLUDE (kt),
    CASE WHEN top_dup THEN {_entries('txt')} END AS kv,
    CASE WHEN top_slow AND NOT top_dup AND nk_top > n_env + CAST(e[{touch}] IS NOT NULL AS INTEGER)
         THEN json_merge_patch(txt, {patch}) END AS extras
FROM (SELECT *, coalesce(len(list_distinct(kt)) < len(kt), false) AS top_dup
      FROM (SELECT *, CASE WHEN top_slow THEN json_keys(txt) END AS kt FROM _iv_parse))"""

    def envelope(self) -> str:
        cols = [f"CASE WHEN kv IS NULL THEN e[{i}] ELSE CAST(struct_extract(list_filter(kv, lambda _x: _x.k = "
                f"{_lit(name)})[-1], 'v') AS VARCHAR) END AS {self.j(name)}" for name, i in _ENV_INDEX.items()]
        first = len(_ENV_INDEX) + 1
        cols += [f"e[{first + i}] AS cx0_{i + 1}" for i in range(len(self.ctx_keys))]
        return f"SELECT * EXCLUDE (e), {', '.join(cols)} FROM _iv_top"

    def header(self) -> str:
        """Why a line cannot reach a version's checks (decode and validate._header_reason), and
        the version of those that can."""
        et, ver = self.j("event_type"), self.j("schema_version")
        vid_cases = []
        for name in self.types:
            whens = " ".join(f"WHEN {_lit(v.ev.version)} THEN {v.vid}" for v in self.versions if v.et.event_type == name)
            vid_cases.append(f"WHEN {_lit(name)} THEN CASE s_ver {whens} END")
        known = " ".join(
            f"WHEN {_lit(name)} THEN {_lit(' is not a version of ' + name + ' (known: ' + ', '.join(self.plan.event_types[name].version_names) + ')')}"
            for name in self.types)
        strict_bad = (f"regexp_matches(regexp_replace(txt, {_lit(_JSON_STRING_RE)}, '\"\"', 'g'), "
                      f"'(?i)nan|inf|,[ \\t\\r\\n]*[\\]}}]')")
        first = f"left(ltrim(txt, {_WS}), 1)"

        def shown(x: str) -> str:
            return f"('''' || CASE WHEN length({x}) > 40 THEN left({x}, 40) || '\u2026' ELSE {x} END || '''')"

        return f"""SELECT *,
    CASE WHEN raw_text IS NULL THEN {self.utf8_reason()}
         WHEN nk_top IS NULL THEN 'invalid_json: the line is not valid JSON'
         WHEN sus AND {strict_bad} THEN 'invalid_json: NaN and Infinity are not JSON'
         WHEN NOT starts_with(txt, '{{') AND {first} <> '{{' THEN 'not_an_object: record is a JSON ' ||
              CASE {first} WHEN '[' THEN 'array' WHEN '"' THEN 'string' WHEN 't' THEN 'boolean' WHEN 'f' THEN 'boolean'
                   WHEN 'n' THEN 'null' ELSE 'number' END || ', expected an object'
         WHEN {et} IS NULL THEN 'missing_required: event_type is required'
         WHEN {et} = 'null' THEN 'null_required: event_type is required'
         WHEN NOT {_is_string(et)} THEN 'wrong_type: event_type must be a string, got ' || {_kind(et)}
         WHEN s_et NOT IN ({_lits(self.types)}) THEN 'unknown_event_type: ' || {shown('s_et')} || ' is not an event type of the plan'
         WHEN {ver} IS NULL THEN 'missing_required: schema_version is required'
         WHEN {ver} = 'null' THEN 'null_required: schema_version is required'
         WHEN NOT {_is_string(ver)} THEN 'wrong_type: schema_version must be a string, got ' || {_kind(ver)}
         WHEN v0 IS NULL THEN 'unknown_schema_version: ' || {shown('s_ver')} || CASE s_et {known} END
    END AS hdr
FROM (SELECT *, CASE s_et {' '.join(vid_cases)} END AS v0
      FROM (SELECT *, CASE WHEN {_is_string(et)} THEN {_unescape(et)} END AS s_et,
                      CASE WHEN {_is_string(ver)} THEN {_unescape(ver)} END AS s_ver FROM _iv_env))"""

    @staticmethod
    def utf8_reason() -> str:
        """decode's message: the first byte that is not part of valid UTF-8, and its position."""
        tokens = f"regexp_extract_all(hex(raw), {_lit(_UTF8_TOKEN)})"
        valid = f"list_transform(_t, lambda _x: regexp_full_match(_x, {_lit(_UTF8_VALID)}))"
        return (f"coalesce(list_transform([{tokens}], lambda _t: list_transform([list_position({valid}, false)], "
                f"lambda _p: 'invalid_utf8: byte 0x' || lower(_t[_p]) || ' at position ' || "
                f"(strlen(array_to_string(_t[1:_p - 1], '')) // 2) || ' is not UTF-8')[1])[1], "
                f"'invalid_utf8: the line is not UTF-8')")

    def layers(self) -> str:
        """The slow lines' property layers: top level, touch, attributes. A line with one non-empty
        layer takes it as it is (repeated keys in it are found later, like in attributes); only
        lines with several (or repeated top-level keys) build the entries of each, deduplicated."""
        touch, attrs = self.j("touch"), self.j("attributes")
        t_obj = f"coalesce(starts_with({touch}, '{{') AND {touch} <> '{{}}', false)"
        a_obj = f"coalesce(starts_with({attrs}, '{{') AND {attrs} <> '{{}}', false)"
        lx = (f"CASE WHEN kv IS NOT NULL THEN list_filter(kv, lambda _x: _x.k NOT IN ({_lits(_NOT_PROPERTY)})) "
              f"WHEN extras IS NOT NULL THEN {_entries('extras')} ELSE [] END")
        general = "hdr IS NULL AND top_slow AND NOT single"
        return f"""SELECT * EXCLUDE (kv, extras), CASE WHEN hdr IS NULL THEN v0 END AS vid,
    CASE WHEN hdr IS NULL AND top_slow AND single THEN
         CASE WHEN extras IS NOT NULL THEN extras WHEN {t_obj} THEN {touch} WHEN {a_obj} THEN {attrs} ELSE '{{}}' END
    END AS single_layer,
    CASE WHEN {general} THEN {lx} END AS lx,
    CASE WHEN {general} THEN {_entries(touch)} END AS lt,
    CASE WHEN {general} THEN {_entries(attrs)} END AS la
FROM (SELECT *, kv IS NULL AND CAST(extras IS NOT NULL AS INTEGER) + CAST({t_obj} AS INTEGER)
                               + CAST({a_obj} AS INTEGER) <= 1 AS single FROM _iv_head)"""

    def merged(self) -> str:
        """validate._merged_attributes: attributes win, then touch, then the top level; a null
        never overrides a value (a key with only nulls stays, null)."""
        attrs, ctx = self.j("attributes"), self.j("context")

        def non_null(layer: str) -> str:
            return f"map_from_entries(list_filter({layer}, lambda _x: _x.v <> 'null'))"

        keys = "list_distinct(list_transform(list_concat(lx, lt, la), lambda _x: _x.k))"
        merged = (f"CAST(to_json(map_concat(map({keys}, list_resize(CAST([] AS JSON[]), len({keys}), CAST('null' AS JSON))), "
                  f"{non_null('lx')}, {non_null('lt')}, {non_null('la')})) AS VARCHAR)")
        return f"""SELECT * EXCLUDE (lx, lt, la, single, single_layer),
    CASE WHEN vid IS NULL THEN NULL WHEN single_layer IS NOT NULL THEN single_layer WHEN lx IS NOT NULL THEN {merged}
         WHEN starts_with({attrs}, '{{') THEN {attrs} ELSE '{{}}' END AS attrs0,
    lx IS NOT NULL AS merged_layers,
    CASE WHEN vid IS NULL OR {ctx} IS NULL OR NOT starts_with({ctx}, '{{') THEN NULL ELSE {ctx} END AS ctx0
FROM _iv_layers"""

    def extract_attrs(self, obj: str) -> str:
        return self.by_vid({v.vid: f"CAST(json_extract({obj}, [{', '.join(_lit(_path(k)) for k in v.keys)}]) AS VARCHAR[])"
                            for v in self.versions if v.keys})

    def extract_ctx(self, obj: str) -> str:
        if not self.ctx_keys:
            return "NULL"
        return f"CAST(json_extract({obj}, [{', '.join(_lit(_path(k)) for k in self.ctx_keys)}]) AS VARCHAR[])"

    def extract(self) -> str:
        """Per version, only its own attribute paths; and the key counts, to find repeated keys.
        The context fields come from the first parse, except on the slow lines (merged)."""
        n = len(self.ctx_keys)
        slow_ctx = f"CASE WHEN top_dup THEN {self.extract_ctx('ctx0')} END AS cvs, " if n else ""
        return f"""SELECT *, {self.extract_attrs('attrs0')} AS pv0, {slow_ctx}
    CASE WHEN vid IS NOT NULL THEN len(json_keys(attrs0)) END AS nk_attr,
    CASE WHEN ctx0 IS NOT NULL THEN len(json_keys(ctx0)) END AS nk_ctx
FROM _iv_merged"""

    def dedup(self) -> str:
        """Repeated keys inside attributes or context (the last one wins, as in Python): only lines
        with more keys than known keys present can have them."""
        n = len(self.ctx_keys)
        cx = [f"CASE WHEN cvs IS NOT NULL THEN cvs[{i}] WHEN ctx0 IS NOT NULL THEN cx0_{i} END" for i in range(1, n + 1)]
        known_ctx = " + ".join(f"CAST(cx1_{i} IS NOT NULL AS INTEGER)" for i in range(1, n + 1)) or "0"
        attr_dup = ("CASE WHEN NOT merged_layers AND nk_attr > list_aggregate(pv0, 'count') THEN "
                    "len(list_distinct(json_keys(attrs0))) < nk_attr ELSE false END")  # a merge has no repeats
        ctx_dup = (f"CASE WHEN nk_ctx > {known_ctx} THEN len(list_distinct(json_keys(ctx0))) < nk_ctx ELSE false END")
        drop = ", ".join(["pv0", "attrs0", "ctx0", "nk_attr", "nk_ctx", "merged_layers"] + (["cvs"] if n else [])
                         + [f"cx0_{i}" for i in range(1, n + 1)])
        cx1 = "".join(f", {sql} AS cx1_{i}" for i, sql in enumerate(cx, 1))
        return f"""SELECT * EXCLUDE ({drop}),
    CASE WHEN attr_dup THEN {self.extract_attrs('attrs_json')} ELSE pv0 END AS pv,
    CASE WHEN ctx_dup THEN {self.extract_ctx('ctx_json')} END AS cvd
FROM (SELECT *, CASE WHEN attr_dup THEN {_object(_entries('attrs0'))} ELSE attrs0 END AS attrs_json,
                CASE WHEN ctx_dup THEN {_object(_entries('ctx0'))} ELSE ctx0 END AS ctx_json
      FROM (SELECT *, coalesce({attr_dup}, false) AS attr_dup, coalesce({ctx_dup}, false) AS ctx_dup
            FROM (SELECT *{cx1} FROM _iv_extract)))"""

    def values(self) -> str:
        cols = [f"pv[{i}] AS p{i}" for i in range(1, self.n_keys + 1)]
        cols += [f"CASE WHEN cvd IS NULL THEN cx1_{i} ELSE cvd[{i}] END AS cx{i}" for i in range(1, len(self.ctx_keys) + 1)]
        drop = ", ".join(["pv", "cvd"] + [f"cx1_{i}" for i in range(1, len(self.ctx_keys) + 1)])
        return f"SELECT * EXCLUDE ({drop}), {', '.join(cols) or 'NULL AS _none'} FROM _iv_dedup"

    # -- checks ----------------------------------------------------------------------------------

    def property_rules(self, ver: _Version) -> list[FieldRule]:
        return [property_rule("attributes", spec) for spec in ver.ev.properties.values()]

    def context_rules(self) -> list[FieldRule]:
        return [property_rule("context", spec) for spec in self.plan.context.values()]

    def identity_types(self) -> list[str]:
        """The types needing lead_id or user_id (`lead` is lead_id's own rule; `none` needs neither)."""
        return [name for name in self.types if self.plan.event_types[name].identity == "lead_or_user"]

    def fast(self) -> str:
        """One conjunction of cheap tests that every field certainly passes: the fields whose rule is
        the same for every type once, the others (source, lead_id, the properties) per version."""
        lead, user = self.j("lead_id"), self.j("user_id")
        common, per_type = [], []
        for column in self.env_columns:
            rules = {rs[column] for rs in self.env_rules.values()}
            if len(rules) > 1:
                per_type.append(column)
                continue
            test = _pass_sql(rules.pop(), self.j(column))
            # A line without top-level extras has no touch key: only the slow lines need the test.
            common.append(f"(NOT top_slow OR {test})" if column == "touch" else test)
        common += [_pass_sql(r, self.cx(r.key)) for r in self.context_rules()]
        per_vid = {}
        for v in self.versions:
            env = self.env_rules[v.et.event_type]
            tests = [_pass_sql(env[c], self.j(c)) for c in per_type]
            if v.et.identity == "lead_or_user":
                tests.append(f"(coalesce({lead}, 'null') <> 'null' OR coalesce({user}, 'null') <> 'null')")
            tests += [_pass_sql(r, f"p{i}") for i, r in enumerate(self.property_rules(v), 1)]
            per_vid[v.vid] = "(" + " AND ".join(tests) + ")" if tests else "true"
        return (f"SELECT *, coalesce(vid IS NOT NULL AND {' AND '.join(common)} AND {self.by_vid(per_vid, 'false')}, false) "
                f"AS fast_ok FROM _iv_values")

    def envelope_failures(self) -> list[str]:
        """Per envelope field, the failure CASE, split by event type only where the rules differ."""
        out = []
        for column in self.env_columns:
            v = self.j(column)
            groups: dict[FieldRule, list[str]] = {}
            for name, rs in self.env_rules.items():
                groups.setdefault(rs[column], []).append(name)
            if len(groups) == 1:
                sql = _fail_sql(next(iter(groups)), v)
            elif all(dataclasses.replace(r, values=None) == dataclasses.replace(next(iter(groups)), values=None)
                     for r in groups):
                # Only the allowed values differ (the sources): one CASE, the type's list looked up.
                rule = next(iter(groups))
                lists = " ".join(f"WHEN {_lit(name)} THEN [{_lits(rs[column].values)}]" for name, rs in self.env_rules.items())
                sql = _fail_sql(dataclasses.replace(rule, values=None), v)
                assert sql.endswith(" END)")
                sql = (sql[:-len(" END)")] + f" WHEN NOT list_contains(CASE s_et {lists} END, {_str(v)}) THEN "
                       f"{_failure(rule.enum_code, rule, quote=True)} END)")
            else:
                whens = " ".join(f"WHEN s_et IN ({_lits(names)}) THEN {_fail_sql(rule, v)}" for rule, names in groups.items())
                sql = f"(CASE {whens} END)"
            if column == "lead_id" and (ident := self.identity_types()):
                lead, user = self.j("lead_id"), self.j("user_id")
                missing = f"({lead} IS NULL OR {lead} = 'null') AND ({user} IS NULL OR {user} = 'null')"
                sql = (f"(CASE WHEN s_et IN ({_lits(ident)}) AND {missing} THEN CASE WHEN {lead} = 'null' OR "
                       f"{user} = 'null' THEN 'null_identity' ELSE 'missing_identity' END ELSE {sql} END)")
            out.append(sql)
        return out

    def failure_items(self) -> list[tuple[str, str]]:
        """(failure CASE, value column) per field, in the reference's order: envelope, then the
        version's properties (by position), then the context."""
        items = list(zip(self.envelope_failures(), (self.j(c) for c in self.env_columns)))
        for i in range(1, self.n_props + 1):
            per_vid = {v.vid: _fail_sql(rules[i - 1], f"p{i}") for v in self.versions
                       if len(rules := self.property_rules(v)) >= i}
            items.append((self.by_vid(per_vid), f"p{i}"))
        items += [(_fail_sql(r, self.cx(r.key)), self.cx(r.key)) for r in self.context_rules()]
        return items

    def codes(self) -> str:
        """For the lines that failed the cheap tests only: each field's failure, or NULL."""
        cols = [f"CASE WHEN vid IS NOT NULL AND NOT fast_ok THEN {sql} END AS f{i}"
                for i, (sql, _) in enumerate(self.failure_items(), 1)]
        return f"SELECT *, {', '.join(cols)} FROM _iv_fast"

    def verdict(self) -> str:
        """ok, and for the other lines their reasons, in the reference's field order. Most rejected
        lines fail one check: their message is built directly (a lambda is much slower here)."""
        items = self.failure_items()
        fs = [f"f{i}" for i in range(1, len(items) + 1)]
        allowed = "(CASE s_et " + " ".join(
            f"WHEN {_lit(name)} THEN {_lit(', '.join(self.plan.event_types[name].allowed_sources))}" for name in self.types) + " END)"
        count = " + ".join(f"CAST({f} IS NOT NULL AS INTEGER)" for f in fs)
        first_value = "CASE " + " ".join(f"WHEN {f} IS NOT NULL THEN {v}" for f, (_, v) in zip(fs, items)) + " END"
        pairs = ", ".join(f"{{'f': {f}, 'v': {v}}}" for f, (_, v) in zip(fs, items))
        many = (f"list_transform(list_filter([{pairs}], lambda _f: _f.f IS NOT NULL), "
                f"lambda _f: {_message_sql('_f.f', '_f.v', allowed)})")
        return f"""SELECT * EXCLUDE ({', '.join(fs)}, n_failed, f_first, v_first),
    CASE WHEN ok THEN CAST([] AS VARCHAR[]) WHEN hdr IS NOT NULL THEN [hdr]
         WHEN n_failed = 1 THEN [{_message_sql('f_first', 'v_first', allowed)}] ELSE {many} END AS reasons
FROM (SELECT *, vid IS NOT NULL AND n_failed = 0 AS ok,
             CASE WHEN n_failed = 1 THEN coalesce({', '.join(fs)}) END AS f_first,
             CASE WHEN n_failed = 1 THEN {first_value} END AS v_first
      FROM (SELECT *, CASE WHEN vid IS NULL OR fast_ok THEN 0 ELSE {count} END AS n_failed FROM _iv_codes))"""

    # -- normalized event ------------------------------------------------------------------------

    def normalized(self) -> str:
        """The event columns of ok lines; what redaction needs for the others."""
        def s(name: str) -> str:
            v = self.j(name)
            return f"CASE WHEN ok AND {_is_string(v)} THEN {_unescape(v)} END"

        occ = self.j("occurred_at")  # an ok value matched the pattern: ASCII, no escapes, in quotes
        cols = [f"{s(n)} AS {n}" for n in ("event_id", "source", "producer_id", "lead_id", "user_id")]
        cols += ["CASE WHEN ok THEN s_et END AS event_type", "CASE WHEN ok THEN s_ver END AS original_schema_version"]
        cols.append(f"CASE WHEN ok THEN {self.by_vid({v.vid: _lit(v.et.current.version) for v in self.versions})} END AS schema_version")
        cols.append(f"CASE WHEN ok THEN {_offset_minutes(occ)} END AS occurred_at_offset_minutes")
        cols.append(f"CASE WHEN ok THEN {_local_time(occ)} END AS occurred_local")
        upgraded = {v.vid: u for v in self.versions if (u := _upgraded_attrs(v)) is not None}
        cols.append(f"CASE WHEN ok THEN {self.by_vid(upgraded, 'attrs_json')} END AS attributes_up")
        cols.append("CASE WHEN ok THEN ctx_json END AS context_up")
        # PII: the context's fields, then the version's attribute fields (field names in ak*).
        for i, key in enumerate(self.ctx_pii):
            cols.append(f"CASE WHEN ok AND {_is_string(self.cx(key))} THEN {self.cx(key)} END AS ct{i}")
        pii_vids = [v.vid for v in self.versions if self.attr_pii[v.vid]]
        for i in range(self.n_attr_slots):
            fields, texts = {}, {}
            for v in self.versions:
                if i < len(self.attr_pii[v.vid]):
                    key = self.attr_pii[v.vid][i]
                    fields[v.vid], texts[v.vid] = _lit(key), _attr_pii_value(v, key)
            cols.append(f"CASE WHEN ok AND vid IN ({', '.join(map(str, pii_vids))}) THEN {self.by_vid(fields)} END AS ak{i}")
            text = self.by_vid(texts)
            cols.append(f"CASE WHEN ok AND vid IN ({', '.join(map(str, pii_vids))}) AND {_is_string(text)} THEN {text} END AS at{i}")
        raw_text = "raw_text" if self.keep_raw else "CASE WHEN ok THEN NULL ELSE raw_text END"
        return f"""SELECT line_no, ok, reasons, {raw_text} AS raw_text, {', '.join(cols)},
    CASE WHEN NOT ok THEN coalesce(txt, {self.lossy()}) END AS redact_src
FROM _iv_verdict"""

    # -- PII -------------------------------------------------------------------------------------

    def hashes(self) -> list[tuple[str, str]]:
        """Context PII (an IP recurs on every event of a visitor) is hashed once per distinct value:
        the rows are materialized and joined to the hashes of their distinct values."""
        n = len(self.ctx_pii)
        if not n:
            return [("_iv_hashed", "SELECT * FROM _iv_out")]
        if not self.dedupe_ctx:
            cols = ", ".join(f"CASE WHEN ct{i} IS NOT NULL THEN {_hmac_sql(_unescape(f'ct{i}'))} END AS ch{i}, "
                             f"CASE WHEN ct{i} IS NOT NULL THEN {_unescape(f'ct{i}')} END AS cv{i}" for i in range(n))
            return [("_iv_hashed", f"SELECT *, {cols} FROM _iv_out")]
        values = " UNION ALL ".join(f"SELECT ct{i} AS t FROM _iv_rows WHERE ct{i} IS NOT NULL" for i in range(n))
        joined = ", ".join(f"h{i}.hash AS ch{i}, h{i}.value AS cv{i}" for i in range(n))
        joins = " ".join(f"LEFT JOIN _iv_hash h{i} ON h{i}.t = r.ct{i}" for i in range(n))
        return [
            ("_iv_rows", "SELECT * FROM _iv_out"),
            ("_iv_hash", (f"SELECT t, value, {_hmac_sql('value')} AS hash FROM (SELECT t, {_unescape('t')} AS value "
                          f"FROM (SELECT DISTINCT t FROM ({values})))")),
            ("_iv_hashed", f"SELECT r.*, {joined} FROM _iv_rows r {joins}"),
        ]

    def final(self) -> str:
        n_ctx, n_attr = len(self.ctx_pii), self.n_attr_slots
        empty = "CAST([] AS STRUCT(field VARCHAR, hash VARCHAR, value VARCHAR)[])"

        def member(key_sql: str, text: str, hash_: str) -> tuple[str, str]:
            return f"to_json({key_sql}) || ':' || {text}", f"to_json({key_sql}) || ':\"' || {hash_} || '\"'"

        # The JSON texts are DuckDB's compact form, so `"key":<value text>` is exactly the member.
        ctx_out = "context_up"
        for i, key in enumerate(self.ctx_pii):
            old, new = member(_lit(key), f"ct{i}", f"ch{i}")
            ctx_out = f"CASE WHEN ch{i} IS NULL THEN {ctx_out} ELSE replace({ctx_out}, {old}, {new}) END"
        attrs_out = "attributes_up"
        for i in range(n_attr):
            old, new = member(f"ak{i}", f"at{i}", f"ah{i}")
            attrs_out = f"replace({attrs_out}, CASE WHEN ah{i} IS NULL THEN chr(1) ELSE {old} END, coalesce({new}, ''))"
        if n_attr:
            attrs_out = f"CASE WHEN ak0 IS NULL THEN attributes_up ELSE {attrs_out} END"
        slot = "{{'field': {f}, 'hash': {h}, 'value': {v}}}"
        ctx_pairs = [slot.format(f=_lit("context." + k), h=f"ch{i}", v=f"cv{i}") for i, k in enumerate(self.ctx_pii)]
        attr_pairs = [slot.format(f=f"'attributes.' || ak{i}", h=f"ah{i}", v=f"av{i}") for i in range(n_attr)]
        if n_ctx == 1:
            ctx_list = f"CASE WHEN ch0 IS NULL THEN {empty} ELSE [{ctx_pairs[0]}] END"
        elif n_ctx:
            ctx_list = f"list_filter([{', '.join(ctx_pairs)}], lambda _p: _p.hash IS NOT NULL)"
        else:
            ctx_list = empty
        pii_ok = ctx_list
        if n_attr:
            pii_ok = (f"CASE WHEN ak0 IS NULL THEN {ctx_list} ELSE list_concat({ctx_list}, "
                      f"list_filter([{', '.join(attr_pairs)}], lambda _p: _p.hash IS NOT NULL)) END")
        avs = "".join(f", CASE WHEN at{i} IS NOT NULL THEN {_unescape(f'at{i}')} END AS av{i}" for i in range(n_attr))
        ahs = "".join(f", CASE WHEN at{i} IS NOT NULL THEN {_hmac_sql(f'av{i}')} END AS ah{i}" for i in range(n_attr))
        return f"""SELECT line_no, ok,
    CASE WHEN ok THEN reasons ELSE list_transform(reasons, lambda _r: {self.redact('_r', 'red')}) END AS reasons,
    raw_text, event_id, event_type, schema_version, original_schema_version,
    occurred_local - INTERVAL (occurred_at_offset_minutes) MINUTE AS occurred_at,
    occurred_at_offset_minutes,
    CAST(occurred_local - INTERVAL (occurred_at_offset_minutes) MINUTE AS DATE) AS event_date,
    source, producer_id, lead_id, user_id,
    CAST({self.others('a2', 'oa')} AS JSON) AS attributes,
    CAST({self.others('c2', 'oc')} AS JSON) AS context,
    CASE WHEN NOT ok THEN list_transform(red, lambda _p: {{'field': 'raw_record', 'hash': _p.hash, 'value': _p.value}})
         WHEN oa IS NULL AND oc IS NULL THEN {pii_ok}
         ELSE list_concat({pii_ok}, {self.slot_struct('oa')}, {self.slot_struct('oc')}) END AS pii_values,
    CASE WHEN NOT ok THEN {self.redact('redact_src', 'red')} END AS redacted_raw
FROM (SELECT *, {self.others_pairs('a2', 'attributes', 'oa')}, {self.others_pairs('c2', 'context', 'oc')}
      FROM (SELECT *, {attrs_out} AS a2, {ctx_out} AS c2, {self.redaction_pairs(self.pii_names)} AS red
            FROM (SELECT *{ahs} FROM (SELECT *{avs},
                    CASE WHEN NOT ok THEN redact_src || chr(10) || array_to_string(reasons, chr(10)) END AS red_src
                  FROM _iv_hashed))))"""

    @staticmethod
    def slot_struct(name: str) -> str:
        return (f"coalesce(list_transform({name}, lambda _p: {{'field': _p.field, 'hash': _p.hash, 'value': _p.value}}), "
                f"CAST([] AS STRUCT(field VARCHAR, hash VARCHAR, value VARCHAR)[]))")

    @staticmethod
    def others_pairs(expr: str, where: str, name: str) -> str:
        """Defence in depth: other top-level string values holding an e-mail address."""
        pairs = (f"list_transform(list_filter({_entries(expr)}, lambda _x: starts_with(_x.v, '\"') AND "
                 f"regexp_matches(_x.v, {_lit(_EMAIL_FIND)})), lambda _x: list_transform([json_extract_string(_x.v, '$')], "
                 f"lambda _s: {{'field': {_lit(where + '.')} || _x.k, 'hash': {_hmac_sql('_s')}, 'value': _s, "
                 f"'key': to_json(_x.k), 'text': _x.v}})[1])")
        return f"CASE WHEN ok AND contains({expr}, '@') THEN {pairs} END AS {name}"

    @staticmethod
    def others(expr: str, name: str) -> str:
        return (f"CASE WHEN {name} IS NULL OR len({name}) = 0 THEN {expr} ELSE list_reduce({name}, lambda _a, _p: "
                f"replace(_a, _p.key || ':' || _p.text, _p.key || ':\"' || _p.hash || '\"'), {expr}) END")

    @staticmethod
    def redaction_pairs(pii_names: tuple[str, ...] = ()) -> str:
        """What to hash in a rejected line and its reasons (`red_src`), longest first: e-mail- and
        phone-looking substrings, and the string value of every member named like a PII field
        (`pii_names`: names, streets, whatever the plan tags), found by key in the text, so a line
        that is not JSON any more still gives them up. Each `{value, hash, find, put}`: the clear
        value and its hash (for the vault), the text to replace and its replacement."""
        phones = (f"list_filter(regexp_extract_all(red_src, {_lit(_PHONE_FIND)}, 2), lambda _p: "
                  f"length(regexp_replace(_p, '[^0-9]', '', 'g')) >= 7 AND NOT regexp_full_match(_p, {_lit(_NOT_PHONE)}))")
        emails = f"CASE WHEN contains(red_src, '@') THEN regexp_extract_all(red_src, {_lit(_EMAIL_FIND)}) ELSE [] END"
        texts = f"list_distinct(list_concat({emails}, {phones}))"
        found = f"list_transform({texts}, lambda _v: {{'value': _v, 'find': _v, 'closed': false}})"
        if pii_names:
            # The member's string token, quotes included; a value cut off by truncation has no closing quote.
            members = f'"(?:{"|".join(re.escape(n) for n in sorted(pii_names))})"\\s*:\\s*("(?:[^"\\\\\\n]|\\\\.)*"?)'
            closed = "(strlen(_t) > 1 AND ends_with(_t, '\"'))"
            tokens = (f"list_transform(list_distinct(regexp_extract_all(red_src, {_lit(members)}, 1)), lambda _t: "
                      f"{{'value': CASE WHEN {closed} THEN coalesce(try(json_extract_string(_t, '$')), "
                      f"substr(_t, 2, strlen(_t) - 2)) ELSE substr(_t, 2) END, 'find': _t, 'closed': {closed}}})")
            # A value also found as e-mail or phone text is hashed once (the same hash either way).
            found = (f"list_concat({found}, list_filter({tokens}, lambda _v: strlen(_v.value) > 0 "
                     f"AND NOT list_contains({texts}, _v.value)))")
        hashed = (f"list_transform(list_sort(list_transform({found}, lambda _v: {{'n': -strlen(_v.find), "
                  f"'value': _v.value, 'find': _v.find, 'closed': _v.closed}})), lambda _v: {{'value': _v.value, "
                  f"'hash': {_hmac_sql('_v.value')}, 'find': _v.find, 'closed': _v.closed}})")
        return (f"CASE WHEN NOT ok THEN list_transform({hashed}, lambda _v: {{'value': _v.value, 'hash': _v.hash, "
                "'find': _v.find, 'put': CASE WHEN _v.find = _v.value THEN _v.hash "
                "ELSE '\"' || _v.hash || CASE WHEN _v.closed THEN '\"' ELSE '' END END}) END")

    @staticmethod
    def redact(expr: str, pairs: str) -> str:
        return f"list_reduce({pairs}, lambda _a, _p: replace(_a, _p.find, _p.put), {expr})"

    @staticmethod
    def lossy() -> str:
        """The line decoded with U+FFFD for every byte that is not part of valid UTF-8."""
        tokens = f"regexp_extract_all(hex(raw), {_lit(_UTF8_TOKEN)})"
        return (f"try(decode(unhex(array_to_string(list_transform({tokens}, lambda _t: CASE WHEN regexp_full_match(_t, "
                f"{_lit(_UTF8_VALID)}) THEN _t ELSE 'EFBFBD' END), ''))))")
