"""The ingest's SQL validation agrees with the plan's reference validator (`validate_records`), line by
line: same verdict, same reasons (the same texts, but for the details of invalid JSON), the same
normalized event with its PII replaced by keyed hashes, and no clear PII anywhere else."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from crm_platform.ingest.sql_validation import (
    HASH_HEX_CHARS,
    HASH_PREFIX,
    OUTPUT_COLUMNS,
    compile_ingest_sql,
    hmac_pads,
    pii_hash,
    run_validation,
)
from crm_platform.plan.examples import example_event
from crm_platform.plan.jsonl import TruncatedFile, iter_lines
from crm_platform.plan.loader import load_plan
from crm_platform.plan.validate import validate_records
from crm_platform.synth import generate_dataset

PLAN = load_plan()
KEY = b"sql-validation-test-key"
VERSIONS = [(et.event_type, v.version) for et, v in PLAN.iter_versions()]
PROPS = [(t, v, name) for t, v in VERSIONS for name in PLAN.get_version(t, v).properties]
WRONG = {"string": 12345, "email": ["a@b.co"], "url": {"href": "x"}, "timestamp": 1767225600, "enum": 3,
         "integer": "12", "number": True, "boolean": "true", "json": "{}"}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}")  # what the privacy check looks for
HASH = re.compile(f"{HASH_PREFIX}[0-9a-f]{{{HASH_HEX_CHARS}}}")
# What the module counts as an e-mail address inside another value (non-ASCII letters included).
_C = "A-Za-z0-9\u0080-\U0010ffff"
_LABEL = f"[{_C}](?:[{_C}-]*[{_C}])?"
EMAILISH = re.compile(f"[{_C}][{_C}.!#$%&'*+/=?^_`{{|}}~-]*@{_LABEL}(?:\\.{_LABEL})+")


# --- running both validators ---------------------------------------------------------------------


def _raw(record) -> bytes:
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode("utf-8")
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def run_sql(records: list[tuple[int, bytes]], key: bytes = KEY) -> dict[int, dict]:
    """line_no -> output row of the compiled SELECT over `records`."""
    con = duckdb.connect()
    con.register("test_lines", pa.table({
        "line_no": pa.array([n for n, _ in records], pa.int64()),
        "raw": pa.array([raw for _, raw in records], pa.large_binary()),
    }))
    sql, params = compile_ingest_sql(PLAN, "test_lines", key)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row)) for row in cur.fetchall()}


def hashed(value: str, key: bytes = KEY) -> str:
    """Independent of the module: `pii:` + the first 32 hex digits of HMAC-SHA256."""
    return "pii:" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def expected_pii(event: dict) -> tuple[dict, dict | None, set[tuple[str, str, str]]]:
    """The reference event's attributes and context with PII hashed, and the vault pairs."""
    et = PLAN.event_types[event["event_type"]]
    attrs, pairs = dict(event.get("attributes") or {}), set()
    for name, spec in et.current.properties.items():
        if spec.pii and isinstance(attrs.get(name), str):
            pairs.add((f"attributes.{name}", hashed(attrs[name]), attrs[name]))
            attrs[name] = hashed(attrs[name])
    ctx = event.get("context")
    if isinstance(ctx, dict):
        ctx = dict(ctx)
        for name, spec in PLAN.context.items():
            if spec.pii and isinstance(ctx.get(name), str):
                pairs.add((f"context.{name}", hashed(ctx[name]), ctx[name]))
                ctx[name] = hashed(ctx[name])
    for where, obj in (("attributes", attrs), ("context", ctx)):
        for k, v in (obj or {}).items():  # defence in depth: e-mail addresses in other fields
            if isinstance(v, str) and not HASH.fullmatch(v) and EMAILISH.search(v):
                pairs.add((f"{where}.{k}", hashed(v), v))
                obj[k] = hashed(v)
    return attrs, ctx, pairs


def utc_and_offset(occurred_at: str) -> tuple[datetime, int]:
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", occurred_at)
    frac = (m.group(2) or ".0")[:7].ljust(7, "0")
    local = datetime.fromisoformat(m.group(1) + frac)
    off = 0 if m.group(3) == "Z" else (1 if m.group(3)[0] == "+" else -1) * (int(m.group(3)[1:3]) * 60 + int(m.group(3)[4:]))
    return (local - timedelta(minutes=off)), off


def assert_agrees(row: dict, ref, label: str = "") -> None:
    """Same verdict and reasons; for accepted lines, the same normalized event."""
    assert row["ok"] == ref.ok, (label, row["reasons"], ref.reasons)
    assert [r.split(":")[0] for r in row["reasons"]] == [r.split(":")[0] for r in ref.reasons], label
    for mine, theirs in zip(row["reasons"], ref.reasons):
        if theirs.startswith("invalid_json:"):
            assert "JSON" in mine, label
        elif not HASH.search(mine):  # a redacted reason quotes a hash where the reference quotes PII
            assert mine == theirs, label
    if not ref.ok:
        assert row["event_id"] is None and row["attributes"] is None and row["redacted_raw"] is not None
        return
    ev = ref.event
    assert row["reasons"] == [] and row["redacted_raw"] is None and row["raw_text"] is None
    for field in ("event_id", "event_type", "schema_version", "source", "producer_id", "lead_id", "user_id"):
        assert row[field] == ev.get(field), (label, field)
    assert row["original_schema_version"] == ref.original_schema_version
    utc, off = utc_and_offset(ev["occurred_at"])
    assert (row["occurred_at"], row["occurred_at_offset_minutes"], row["event_date"]) == (utc, off, utc.date()), label
    attrs, ctx, pairs = expected_pii(ev)
    assert json.loads(row["attributes"]) == attrs, label
    assert (json.loads(row["context"]) if row["context"] is not None else None) == ctx, label
    assert {(p["field"], p["hash"], p["value"]) for p in row["pii_values"]} == pairs, label


# --- (a) the plan's example events and every violation the plan tests build -----------------------


def _cases() -> dict[str, object]:
    cases: dict[str, object] = {}

    def add(name: str, record) -> None:
        assert name not in cases
        cases[name] = record

    for t, v in VERSIONS:
        add(f"example {t}@{v}", example_event(PLAN, t, v))
    for t, v, name in PROPS:
        spec = PLAN.get_version(t, v).properties[name]
        tag = f"{t}@{v}.{name}"
        e = example_event(PLAN, t, v)
        e["attributes"][name] = WRONG[spec.type]
        add(f"wrong type {tag}", e)
        e = example_event(PLAN, t, v)
        del e["attributes"][name]
        add(f"missing {tag}", e)
        e = example_event(PLAN, t, v)
        e["attributes"][name] = None
        add(f"null {tag}", e)
        if spec.type == "enum":
            for i, bad in enumerate(("not_a_value", spec.values[-1].upper() + "?")):
                e = example_event(PLAN, t, v)
                e["attributes"][name] = bad
                add(f"enum {i} {tag}", e)
        if spec.type in ("string", "email", "url"):
            e = example_event(PLAN, t, v)
            e["attributes"][name] = "x" * (spec.effective_max_length + 1)
            add(f"too long {tag}", e)
            e = example_event(PLAN, t, v)
            e["attributes"][name] = "é" * spec.effective_max_length  # characters, not bytes
            add(f"long non-ascii {tag}", e)
        if spec.minimum is not None or spec.maximum is not None:
            for i, value in enumerate(x for x in (
                    spec.minimum - 1 if spec.minimum is not None else None, spec.minimum,
                    spec.maximum + 1 if spec.maximum is not None else None, spec.maximum) if x is not None):
                e = example_event(PLAN, t, v)
                e["attributes"][name] = value
                add(f"range {i} {tag}", e)
    for field, spec in PLAN.context.items():
        e = example_event(PLAN, "lead_created")
        e["context"][field] = WRONG[spec.type]
        add(f"context wrong type {field}", e)
    e = example_event(PLAN, "lead_created")
    e["attributes"].update(employee_count=3.0, estimated_value=10)
    add("integral float is an integer", e)
    e = example_event(PLAN, "lead_created")
    e["attributes"].update(employee_count=3.5, estimated_value=False)
    add("float is not an integer, bool is not a number", e)
    e = example_event(PLAN, "lead_created")
    e["attributes"].update(employee_count=True, estimated_value=10**30)
    add("bool is not an integer, a big int is a number", e)
    add("exponent integer", '{"event_type":"lead_created","schema_version":"2026-01-1","event_id":"e1","occurred_at":'
        '"2026-01-10T15:12:30Z","source":"crm","lead_id":"l1","attributes":{"employee_count":1E2,"estimated_value":-0}}')
    consent = example_event(PLAN, "consent_changed")
    consent["attributes"]["granted"] = 1
    add("integer is not a boolean", consent)
    for i, value in enumerate(["2026-01-10T15:12:30Z", "2026-01-10T15:12:30.123456+05:30", "2024-02-29T00:00:00-08:00",
                               "2026-01-10T15:12:30", "2026-01-10T15:12:30.5", "2026-02-30T10:00:00Z",
                               "2025-02-29T10:00:00Z", "2026-13-01T10:00:00Z", "2026-01-10T24:00:00Z",
                               "2026-01-10 15:12:30Z", "2026-01-10T15:12:30+0100", "2026-01-10", "2026-01-10T15:12:30Z\n",
                               "", 1767225600, "0000-01-01T00:00:00Z", "2026-01-31T23:59:59.123456789-00:00",
                               "2026-04-31T10:00:00Z", "2026-06-30T23:30:00-11:00", "2026-01-01T00:10:00+14:00"]):
        e = example_event(PLAN, "lead_created")
        e["occurred_at"] = value
        add(f"occurred_at {i} {value!r}", e)
    e = example_event(PLAN, "model_score_computed")
    e["attributes"]["as_of"] = "2026-06-31T00:00:00Z"
    add("timestamp property not a real date", e)
    e = example_event(PLAN, "model_score_computed")
    e["source"] = "webform"
    add("source not allowed", e)
    for t in PLAN.event_types:
        e = example_event(PLAN, t)
        e["source"] = "crm"
        add(f"crm allowed {t}", e)
    del e["source"]
    add("source missing", e)
    for i, value in enumerate((None, "", "x" * 201, 42)):
        for field in ("lead_id", "event_id"):
            e = example_event(PLAN, "opportunity_closed")
            e[field] = value
            add(f"{field} {i}", e)
    e = example_event(PLAN, "opportunity_closed")
    del e["lead_id"]
    add("lead_id absent", e)
    e = example_event(PLAN, "campaign_touch")
    del e["lead_id"]
    add("touch with user only", dict(e))
    del e["user_id"]
    add("touch without ids", dict(e))
    e["user_id"] = None
    add("touch with null user", dict(e))
    e["lead_id"] = "lead_1"
    add("touch with lead, null user", dict(e))
    e = example_event(PLAN, "campaign_spend_reported")  # identity none: no id needed, one given is typed
    del e["lead_id"], e["user_id"]
    add("no person, no ids", dict(e))
    add("no person, null ids", {**e, "lead_id": None, "user_id": None})
    add("no person, a lead given", {**e, "lead_id": "lead_1"})
    add("no person, an empty lead", {**e, "lead_id": ""})
    add("no person, a numeric user", {**e, "user_id": 12})
    e = example_event(PLAN, "campaign_touch")
    e["attributes"]["landing_page"] = "https://example.com/" + "a" * 100_000
    e["context"]["user_agent"] = "b" * 100_000
    add("very long values", e)
    e = example_event(PLAN, "lead_created")
    e["attributes"]["email"] = "jane.doe.secret@"
    e["context"]["ip"] = "9" * 65
    add("pii not echoed", e)
    for field in ("attributes", "context", "touch"):
        e = example_event(PLAN, "lead_updated")
        e[field] = ["not", "an", "object"]
        add(f"{field} not an object", e)
        e = example_event(PLAN, "lead_updated")
        e[field] = None
        add(f"{field} null", e)
    base = example_event(PLAN, "activity_logged")
    add("unknown type", {**base, "event_type": "page_view"})
    add("unknown version", {**base, "schema_version": "2026-03-1"})
    add("no type", {k: v for k, v in base.items() if k != "event_type"})
    add("null version", {**base, "schema_version": None})
    add("only a type", {"event_type": "page_view"})
    add("type not a string", {**base, "event_type": ["lead_created"]})
    add("version not a string", {**base, "schema_version": 3})
    add("long unknown type", {**base, "event_type": "x" * 50})
    for i, raw in enumerate([b"{not json", b'{"a": NaN}', b'{"a": [1, -Infinity]}', b'{"a": "\\ud800"}', b"\xff\xfe{}",
                             b'{"a": "caf\xe9"}', b"[1, 2]", b'"lead_created"', b"42", b"true", b"null", b"{}",
                             b'{"big": ' + b"9" * 30 + b"}", b'  {"event_type": "page_view"}  ', b'{"a": 1} x',
                             b'{"a": "x\ty"}', b"\xef\xbb\xbf{}", b'{"a": "\\ud83d\\ude00"}']):
        add(f"raw {i} {raw[:20]!r}", raw)
    add("top-level and touch properties", {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t1",
        "occurred_at": "2026-03-01T09:00:00+01:00", "source": "ads", "user_id": "anon_7",
        "touch": {"channel": "paid_search", "campaign_id": "cmp_1", "touch_type": "click"},
        "utm_source": "google", "gclid_raw": "abc"})
    add("precedence, null never overrides", {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t2",
        "occurred_at": "2026-03-01T09:00:00Z", "source": "web", "lead_id": "lead_1",
        "channel": "display", "touch": {"channel": "email", "campaign_id": "from_touch"},
        "attributes": {"channel": "referral", "touch_type": "visit", "campaign_id": None}})
    add("properties outside attributes are checked", {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t3",
        "occurred_at": "2026-03-01T09:00:00Z", "source": "web", "lead_id": "lead_1",
        "touch": {"channel": "tv", "touch_type": "click"}, "landing_page": "not a url"})
    add("null at the top level, value in touch", {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_t4",
        "occurred_at": "2026-03-01T09:00:00Z", "source": "web", "lead_id": None, "user_id": "u1",
        "campaign_id": None, "touch": {"channel": "email", "touch_type": "visit", "campaign_id": None}})
    e = example_event(PLAN, "lead_created")
    e["attributes"]["favourite_colour"] = {"any": ["json", 1]}
    add("unplanned kept", e)
    e = example_event(PLAN, "opportunity_created")
    e.update(occurred_at="yesterday", source="ml", lead_id=None)
    e["attributes"].update(amount=-5, currency="EURO", opportunity_id=None)
    add("several reasons in field order", e)
    # Keys given twice: Python keeps the last one, at the top level and inside the objects.
    add("repeated top-level key", '{"event_type":"page_view","event_type":"lead_created","schema_version":"2026-01-1",'
        '"event_id":"e_dup1","occurred_at":"2026-01-10T15:12:30Z","source":"crm","lead_id":"l1"}')
    add("repeated attribute", '{"event_type":"campaign_touch","schema_version":"2026-04-1","event_id":"e_dup2",'
        '"occurred_at":"2026-01-10T15:12:30Z","source":"web","lead_id":"l1","attributes":{"channel":"tv",'
        '"touch_type":"click","channel":"email","email":"a@b.example.com","email":"c@d.example.com"}}')
    add("repeated context field", '{"event_type":"lead_updated","schema_version":"2026-01-1","event_id":"e_dup3",'
        '"occurred_at":"2026-01-10T15:12:30Z","source":"crm","lead_id":"l1","attributes":{"phone":"+1 415 555 0100",'
        '"phone":"+44 20 7946 0958"},"context":{"ip":"10.0.0.1","country":"FR","ip":"10.0.0.2"}}')
    add("repeated key in touch", '{"event_type":"campaign_touch","schema_version":"2026-04-1","event_id":"e_dup4",'
        '"occurred_at":"2026-01-10T15:12:30Z","source":"ads","user_id":"u1","touch":{"channel":"tv","channel":"email",'
        '"touch_type":"click","campaign_id":null}}')
    add("repeated key at the top level and in touch", '{"event_type":"campaign_touch","schema_version":"2026-04-1",'
        '"event_id":"e_dup5","occurred_at":"2026-01-10T15:12:30Z","source":"ads","user_id":"u1","channel":"tv",'
        '"channel":null,"touch":{"touch_type":"click","channel":"email"},"touch":{"touch_type":"visit"}}')
    add("top-level properties only, with a null", {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "e_top",
        "occurred_at": "2026-01-10T15:12:30Z", "source": "web", "user_id": "u1",
        "channel": "email", "touch_type": "visit", "campaign_id": None, "landing_page": "https://example.com/x"})
    add("empty touch and attributes, properties at the top", {
        "event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "e_top2",
        "occurred_at": "2026-01-10T15:12:30Z", "source": "web", "user_id": "u1", "touch": {}, "attributes": {},
        "channel": "email", "touch_type": "visit"})
    add("escapes and unicode", '{"event_type":"lead_created","schema_version":"2026-01-1","event_id":"e\\"q\\u00e9\\/1",'
        '"occurred_at":"2026-01-10T15:12:30Z","source":"\\u0063rm","lead_id":"l\\u00e9\\ud83d\\ude00",'
        '"attributes":{"first_name":"Ren\\u00e9e \\"R\\"","stage":"\\u006eew","email":"a\\u0040b.example.com",'
        '"city":"M\\u00fcnchen\\n","note":"x\\\\y"}}')
    add("email in an unplanned property", {
        "event_type": "manual_label", "schema_version": "2026-01-1", "event_id": "e_mail",
        "occurred_at": "2026-01-10T15:12:30Z", "source": "manual", "lead_id": "l1",
        "attributes": {"label_name": "quality", "label_value": "good", "note": "call jane@example.com first"},
        "context": {"user_agent": "x", "contact": "ops@example.org", "backup": "Zoë <zoë@bücher.example>"}})
    # Migrations to the current version (activity_logged 2026-01-1 -> 2026-06-1, campaign_touch -> 2026-04-1).
    act = {"event_type": "activity_logged", "schema_version": "2026-01-1", "event_id": "e_act",
           "occurred_at": "2026-01-10T15:12:30Z", "source": "dialer", "lead_id": "l1"}
    add("migrate activity renames and default", {**act, "attributes": {
        "activity_type": "call", "direction": "outbound", "duration_sec": 90, "rep_id": "rep_1"}})
    add("migrate activity null outcome, rename over an unplanned value", {**act, "attributes": {
        "activity_type": "call", "direction": "inbound", "outcome": None, "duration_sec": None,
        "duration_seconds": "old", "x": 1}})
    add("migrate activity outcome kept", {**act, "attributes": {
        "activity_type": "email", "direction": "inbound", "outcome": "replied"}})
    touch = {"event_type": "campaign_touch", "schema_version": "2026-01-1", "event_id": "e_ct",
             "occurred_at": "2026-01-10T15:12:30Z", "source": "ads", "user_id": "u1"}
    add("migrate touch default and drop", {**touch, "attributes": {"channel": "display", "position": "first"}})
    add("migrate touch keeps an unplanned touch_type", {**touch, "touch": {"channel": "email", "touch_type": "visit"}})
    add("migrate touch null touch_type", {**touch, "attributes": {"channel": "email", "touch_type": None}})
    add("migrate touch empty attributes", {**touch, "channel": "direct", "attributes": {}})
    add("migrate touch, a bad position still fails", {**touch, "attributes": {"channel": "email", "position": 3}})
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def case_results():
    names = list(CASES)
    records = [(i, _raw(CASES[n])) for i, n in enumerate(names, 1)]
    rows = run_sql(records)
    refs = validate_records(records, PLAN)
    return {name: (rows[i], ref) for i, (name, ref) in enumerate(zip(names, refs), 1)}


@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_the_reference_validator(case_results, name):
    row, ref = case_results[name]
    assert_agrees(row, ref, name)


def test_every_reason_code_is_exercised(case_results):
    from crm_platform.plan.validate import REASON_CODES

    seen = {r.split(":")[0] for row, _ in case_results.values() for r in row["reasons"]}
    assert seen == set(REASON_CODES)


# --- (b) the generator's landing files ------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    generate_dataset(root, leads=300, days=60, seed=3)
    records: list[tuple[str, int, bytes]] = []
    for path in sorted((root / "landing" / "events").rglob("*.jsonl*")):
        try:
            for n, raw in iter_lines(path):
                records.append((path.name, n, raw))
        except TruncatedFile:  # the generator's cut-off gzip: its complete lines were delivered
            pass
    numbered = [(i, raw) for i, (_, _, raw) in enumerate(records)]
    return records, run_sql(numbered), validate_records(numbered, PLAN)


def test_generated_lines_agree_line_by_line(generated):
    records, rows, refs = generated
    assert len(rows) == len(refs) == len(records) > 5000
    for i, ref in enumerate(refs):
        assert_agrees(rows[i], ref, f"{records[i][0]}:{records[i][1]}")
    # The generator plants every kind of invalid record, and most lines are valid.
    assert 0.9 < sum(r.ok for r in refs) / len(refs) < 1
    assert {r.reasons[0].split(":")[0] for r in refs if not r.ok} >= {
        "invalid_json", "not_an_object", "invalid_utf8", "unknown_event_type", "unknown_schema_version",
        "missing_required", "null_required", "wrong_type", "enum_violation", "naive_timestamp",
        "invalid_timestamp", "source_not_allowed"}


def test_generated_shapes_take_every_path(generated):
    """The sample covers top-level properties, touch objects, migrations and every offset style."""
    records, rows, _ = generated
    raws = [raw for _, _, raw in records]
    assert any(b'"touch":' in r for r in raws) and any(b'"utm_source":' in r and b'"attributes"' not in r for r in raws)
    assert {row["original_schema_version"] for row in rows.values() if row["ok"]} >= {"2026-01-1", "2026-04-1", "2026-06-1"}
    assert {row["occurred_at_offset_minutes"] for row in rows.values() if row["ok"]} >= {0, 330, -240, -300}


# --- (c) the keyed hash --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"k", KEY, b"x" * 64, bytes(range(200))], ids=["1 byte", "short", "64 bytes", "200 bytes"])
def test_hmac_in_sql_is_python_hmac(key):
    values = ["203.0.113.12", "", "é✓😀", "x" * 300, "2001:db8::1", "a\"b\\c"]
    records = []
    for i, value in enumerate(values, 1):
        e = example_event(PLAN, "campaign_touch")
        e["context"]["ip"] = value[:64]
        records.append((i, _raw(e)))
    rows = run_sql(records, key)
    for i, value in enumerate(values, 1):
        expected = "pii:" + hmac.new(key, value[:64].encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        assert pii_hash(key, value[:64]) == expected
        assert json.loads(rows[i]["context"])["ip"] == expected
        assert rows[i]["pii_values"] == [{"field": "context.ip", "hash": expected, "value": value[:64]}]


def test_hmac_pads_and_parameters_keep_the_key_out_of_the_sql():
    key = b"a-secret-key-that-must-not-leak"
    ipad, opad = hmac_pads(key)
    assert len(ipad) == len(opad) == 64 and bytes(a ^ b for a, b in zip(ipad, opad)) == bytes([0x36 ^ 0x5C]) * 64
    sql, params = compile_ingest_sql(PLAN, "lines", key)
    assert set(params) == {"pii_ipad", "pii_opad"} and params["pii_ipad"] == ipad
    for secret in (key, ipad, opad):
        assert secret.hex() not in sql.lower() and secret.hex().upper() not in sql
    assert key.decode() not in sql
    with pytest.raises(ValueError):
        hmac_pads(b"")


# --- (d) privacy ---------------------------------------------------------------------------------


def _clear_outside_the_vault(row: dict) -> list[str]:
    """Vaulted values still in the row's other columns: as a JSON value in attributes or context, as
    a substring of the redacted line or reasons; and any e-mail address at all."""
    objects = [json.loads(row[c]) for c in ("attributes", "context") if row[c] is not None]
    values = {v for obj in objects for v in obj.values() if isinstance(v, str)}
    texts = [row["redacted_raw"] or "", *row["reasons"]]
    found = [p["value"] for p in row["pii_values"] if p["value"] in values
             or (len(p["value"]) >= 5 and any(p["value"] in t for t in texts))]
    found += [m for t in texts + [row["attributes"] or "", row["context"] or ""] for m in EMAIL.findall(t)]
    return found


def test_no_clear_pii_outside_the_vault(generated):
    records, rows, refs = generated
    vaulted = {p["value"] for row in rows.values() for p in row["pii_values"]}
    phones = {v for v in vaulted if re.fullmatch(r"[+0-9(][0-9 ().-]{5,}[0-9]", v)}
    assert phones and any("@" in v for v in vaulted)  # the sample has both to hide
    for i, row in rows.items():
        assert _clear_outside_the_vault(row) == [], (records[i], row)
        texts = " ".join([row["attributes"] or "", row["context"] or "", row["redacted_raw"] or "", *row["reasons"]])
        assert not [p for p in phones if p in texts], records[i]
        if row["context"] and refs[i].ok and isinstance((refs[i].event.get("context") or {}).get("ip"), str):
            assert HASH.fullmatch(json.loads(row["context"])["ip"])


def test_quarantined_lines_are_redacted_and_their_pii_vaulted():
    bad = example_event(PLAN, "lead_created")
    bad["attributes"].update(email="jane.doe@example.com", phone="+1 (415) 555-0100", stage="hot")
    bad["source"] = "jane.doe@example.com"  # a non-PII field quoted in a reason
    records = [(1, _raw(bad)), (2, b'{"event_type": "lead_created", "attributes": {"email": "bob@example.org", "ph'),
               (3, '{"x": "caf\xe9", "email": "ann@example.net", "tel": "0049 30 1234567"}'.encode("latin-1"))]
    rows = run_sql(records)
    for row in rows.values():
        assert not row["ok"] and row["redacted_raw"] and _clear_outside_the_vault(row) == []
        assert all(p["field"] == "raw_record" and p["hash"] == hashed(p["value"]) for p in row["pii_values"])
        for p in row["pii_values"]:
            assert p["hash"] in row["redacted_raw"] or any(p["hash"] in r for r in row["reasons"])
    # E-mail- and phone-looking text anywhere, and every member named like a PII field of the plan.
    assert {p["value"] for p in rows[1]["pii_values"]} == {"jane.doe@example.com", "+1 (415) 555-0100",
                                                           "example first_name", "example last_name",
                                                           "example street", "example ip"}
    assert f'"first_name": "{hashed("example first_name")}"' in rows[1]["redacted_raw"]
    assert rows[1]["reasons"][0] == f"source_not_allowed: source '{hashed('jane.doe@example.com')}' is not allowed " \
                                    "for lead_created (allowed: api, cdc, crm, hubspot, import, salesforce, webform)"
    assert "2026-01-10T15:12:30Z" in rows[1]["redacted_raw"]  # dates are not phone numbers
    assert {p["value"] for p in rows[2]["pii_values"]} == {"bob@example.org"}
    assert {p["value"] for p in rows[3]["pii_values"]} == {"ann@example.net", "0049 30 1234567"}
    assert rows[3]["raw_text"] is None and "caf\ufffd" in rows[3]["redacted_raw"]


# --- (e) specific shapes, with exact results ------------------------------------------------------


def test_invalid_utf8_bom_and_non_objects():
    e = example_event(PLAN, "lead_created")
    e["attributes"]["first_name"] = "Renée"
    raw = _raw(e).replace("é".encode(), b"\xe9", 1)
    records = [(1, raw), (2, b"\xef\xbb\xbf" + _raw(example_event(PLAN, "lead_updated"))), (3, b"[1,2]"),
               (4, _raw(example_event(PLAN, "lead_updated"))), (5, b'"text"'), (6, b"\xf0\x9f\x98"),
               (7, b'{"a": "\xed\xa0\x80"}')]
    rows = run_sql(records)
    refs = {r.line: r for r in validate_records(records, PLAN)}
    pos = raw.index(b"\xe9")
    assert rows[1]["reasons"] == [f"invalid_utf8: byte 0xe9 at position {pos} is not UTF-8"] == list(refs[1].reasons)
    # The lossy decode (U+FFFD for the byte) is what the name's redaction hashes.
    assert rows[1]["raw_text"] is None and "Ren\ufffde" in {p["value"] for p in rows[1]["pii_values"]}
    assert "Ren" not in rows[1]["redacted_raw"]
    assert rows[1]["redacted_raw"].count("pii:") == len(rows[1]["pii_values"]) >= 2  # e-mail address, names
    assert rows[2]["ok"] and rows[2]["raw_text"] is None  # a BOM inside the file is read past, as json does
    assert rows[2]["event_id"] == rows[4]["event_id"] and rows[2]["attributes"] == rows[4]["attributes"]
    assert rows[3]["reasons"] == ["not_an_object: record is a JSON array, expected an object"]
    assert rows[3]["raw_text"] == "[1,2]" and rows[3]["redacted_raw"] == "[1,2]"
    assert rows[5]["reasons"] == ["not_an_object: record is a JSON string, expected an object"]
    for n in (6, 7):
        assert rows[n]["reasons"] == list(refs[n].reasons) and rows[n]["reasons"][0].startswith("invalid_utf8: byte 0x")
        assert "\ufffd" in rows[n]["redacted_raw"]


def test_nested_touch_precedence_exact():
    record = {"event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_p",
              "occurred_at": "2026-03-01T09:00:00-05:00", "source": "web", "user_id": "u9", "lead_id": None,
              "channel": "display", "campaign_id": "top", "utm_medium": None, "creative_id": "top_cr",
              "touch": {"channel": "email", "campaign_id": None, "utm_medium": "from_touch", "click_id": "t1"},
              "attributes": {"channel": "referral", "touch_type": "visit", "click_id": None, "utm_term": None}}
    row = run_sql([(1, _raw(record))])[1]
    assert row["ok"] and row["user_id"] == "u9" and row["lead_id"] is None
    assert json.loads(row["attributes"]) == {"channel": "referral", "campaign_id": "top", "utm_medium": "from_touch",
                                             "creative_id": "top_cr", "click_id": "t1", "touch_type": "visit",
                                             "utm_term": None}
    assert row["occurred_at"] == datetime(2026, 3, 1, 14, 0) and row["occurred_at_offset_minutes"] == -300
    assert row["event_date"] == datetime(2026, 3, 1).date() and row["context"] is None and row["pii_values"] == []


def test_migrations_exact():
    act = {"event_type": "activity_logged", "schema_version": "2026-01-1", "event_id": "a1",
           "occurred_at": "2026-06-30T23:30:00+05:30", "source": "dialer", "lead_id": "l1",
           "attributes": {"activity_type": "call", "direction": "outbound", "duration_sec": 90, "rep_id": "rep_7",
                          "duration_seconds": "unplanned, replaced", "extra": [1]}}
    touch = {"event_type": "campaign_touch", "schema_version": "2026-01-1", "event_id": "t1",
             "occurred_at": "2026-01-10T15:12:30Z", "source": "ads", "lead_id": "l1",
             "attributes": {"channel": "paid_search", "position": "first", "campaign_id": "c1"}}
    current = {**touch, "event_id": "t2", "schema_version": "2026-04-1",
               "attributes": {"channel": "email", "touch_type": "impression", "position": "kept, unplanned"}}
    rows = run_sql([(1, _raw(act)), (2, _raw(touch)), (3, _raw(current))])
    assert rows[1]["schema_version"] == "2026-06-1" and rows[1]["original_schema_version"] == "2026-01-1"
    assert json.loads(rows[1]["attributes"]) == {"activity_type": "call", "direction": "outbound", "duration_seconds": 90,
                                                 "owner_id": "rep_7", "outcome": "completed", "extra": [1]}
    assert rows[1]["occurred_at"] == datetime(2026, 6, 30, 18, 0) and rows[1]["occurred_at_offset_minutes"] == 330
    assert (rows[2]["schema_version"], rows[2]["original_schema_version"]) == ("2026-04-1", "2026-01-1")
    assert json.loads(rows[2]["attributes"]) == {"channel": "paid_search", "campaign_id": "c1", "touch_type": "click"}
    assert (rows[3]["schema_version"], rows[3]["original_schema_version"]) == ("2026-04-1", "2026-04-1")
    assert json.loads(rows[3]["attributes"]) == current["attributes"]


def test_run_validation_makes_a_table_with_the_documented_columns():
    con = duckdb.connect()
    con.register("lines", pa.table({"line_no": pa.array([7, 9], pa.int64()),
                                    "raw": pa.array([_raw(example_event(PLAN, "lead_created")), b"oops"], pa.large_binary())}))
    con.execute("begin")
    assert run_validation(con, PLAN, "lines", KEY) == "validated"
    types = dict(con.execute("select column_name, data_type from duckdb_columns() where table_name = 'validated'").fetchall())
    con.execute("commit")
    assert tuple(types) == OUTPUT_COLUMNS
    assert types["ok"] == "BOOLEAN" and types["reasons"] == "VARCHAR[]" and types["occurred_at"] == "TIMESTAMP"
    assert types["occurred_at_offset_minutes"] == "INTEGER" and types["event_date"] == "DATE"
    assert types["attributes"] == types["context"] == "JSON"
    assert types["pii_values"] == "STRUCT(field VARCHAR, hash VARCHAR, \"value\" VARCHAR)[]"
    ok, bad = con.execute("select ok from validated order by line_no").fetchall()
    assert ok == (True,) and bad == (False,)
