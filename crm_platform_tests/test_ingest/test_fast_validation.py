"""The fast path agrees with the exact path on every line it takes: the same event, the same PII
hashes and vault entries; it never takes a line the exact path rejects; and it takes the canonical
lines real producers send (otherwise it would be a slow path with extra steps)."""
from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pytest

from crm_platform.ingest.fast_validation import FAST_COLUMNS, FastPath, pii_slots
from crm_platform.ingest.pii_hashing import PiiHasher
from crm_platform.ingest.sql_validation import compile_ingest_sql, pii_hash
from crm_platform.plan.examples import example_event
from crm_platform.plan.jsonl import STRIP_LINE_END_SQL, TruncatedFile, iter_lines
from crm_platform.plan.loader import load_plan
from crm_platform.synth import generate_dataset
from crm_platform_tests.test_ingest.test_sql_validation import CASES, KEY, _raw

PLAN = load_plan()
EVENT_FIELDS = [c for c in FAST_COLUMNS if c not in ("line_no", "attributes", "context")]


def run_both(records: list[tuple[int, bytes]], line_end: bytes = b"\n"):
    """(fast rows by line, diverted lines, vault pairs the fast path recorded, exact rows by line)."""
    con = duckdb.connect()
    con.register("lines", pa.table({
        "line_no": pa.array([n for n, _ in records], pa.int64()),
        "raw": pa.array([raw + line_end for _, raw in records], pa.large_binary()),
    }))
    fast = FastPath(PLAN, KEY)
    fast.attach(con)
    cur = con.execute(fast.sql("lines"))
    names = [d[0] for d in cur.description]
    fast_rows = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    diverted = fast.diverted.take()
    pairs = {(r["field"], r["hash"], r["value"]) for r in fast.hasher.drain().to_pylist()}
    sql, params = compile_ingest_sql(PLAN, f"(select line_no, {STRIP_LINE_END_SQL} as raw from lines)", KEY)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    exact = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    return fast_rows, set(diverted.column("line_no").to_pylist()), pairs, exact


def assert_fast_agrees(fast_rows, diverted, pairs, exact, labels=None):
    label = (lambda n: labels[n]) if labels else str
    assert set(fast_rows) | diverted == set(exact) and not set(fast_rows) & diverted
    expected_pairs = set()
    for n, row in fast_rows.items():
        ref = exact[n]
        assert ref["ok"], (label(n), ref["reasons"])
        for field in EVENT_FIELDS:
            assert row[field] == ref[field], (label(n), field, row[field], ref[field])
        assert json.loads(row["attributes"]) == json.loads(ref["attributes"]), label(n)
        assert (json.loads(row["context"]) if row["context"] else None) == (
            json.loads(ref["context"]) if ref["context"] else None), label(n)
        expected_pairs |= {(p["field"], p["hash"], p["value"]) for p in ref["pii_values"]}
    # One vault entry per value (the field it was first seen in): the same values, each under a
    # field the exact path also names for it.
    assert {(h, v) for _, h, v in pairs} == {(h, v) for _, h, v in expected_pairs}
    assert pairs <= expected_pairs


def test_the_plans_cases_agree():
    names = list(CASES)
    records = [(i, _raw(CASES[name])) for i, name in enumerate(names, 1)]
    fast_rows, diverted, pairs, exact = run_both(records)
    assert_fast_agrees(fast_rows, diverted, pairs, exact, dict(enumerate(names, 1)))
    taken = {names[n - 1] for n in fast_rows}
    # Every type's example (canonical, valid) takes the fast path.
    assert {f"example {t}@{v.version}" for t, v in ((et.event_type, v) for et, v in PLAN.iter_versions())} <= taken


def _near_canonical() -> dict[str, object]:
    """Lines a careless fast path would get wrong: almost canonical, but each different."""
    base = example_event(PLAN, "lead_created")
    touch = example_event(PLAN, "campaign_touch", "2026-01-1")
    cases: dict[str, object] = {"base": base, "touch base": touch}

    def variant(name: str, src: dict, **changes) -> None:
        e = json.loads(json.dumps(src))
        for k, v in changes.items():
            if v is ...:
                e.pop(k, None)
            else:
                e[k] = v
        cases[name] = e

    variant("event_id a number", base, event_id=42)
    variant("lead_id a number", base, lead_id=7)
    variant("user_id null", base, user_id=None)
    variant("producer_id bool", base, producer_id=True)
    variant("attributes a string", base, attributes="x")
    variant("attributes a list", base, attributes=[{"email": "a@b.co"}])
    variant("attributes empty", base, attributes={})
    variant("attributes null", base, attributes=None)
    variant("context a string", base, context="x")
    variant("context empty", base, context={})
    variant("no context", base, context=...)
    variant("no attributes", base, attributes=...)
    variant("unknown top-level key", base, campaign="x")
    variant("touch object", touch, touch={"channel": "email"}, attributes=...)
    for i, ts in enumerate(["2026-04-31T10:00:00Z", "2026-04-30T10:00:00Z", "2024-02-29T10:00:00Z",
                            "2025-02-29T10:00:00Z", "2026-01-31T23:59:59.123456789-05:30", "2026-12-31T00:00:00+14:00",
                            "0000-01-01T00:00:00Z", "2026-01-10T15:12:60Z", "2026-01-10 15:12:30Z", "2026-01-10T15:12:30"]):
        variant(f"timestamp {i} {ts}", base, occurred_at=ts)
    e = json.loads(json.dumps(base))
    e["attributes"]["Email"] = "jane@example.com"
    cases["key in another case"] = e
    e = json.loads(json.dumps(base))
    e["attributes"]["note"] = "reach jane@example.com"
    cases["email in an unplanned property"] = e
    e = json.loads(json.dumps(base))
    e["attributes"]["company"] = "café" * 75  # 300 characters, 375 bytes: within the bound
    cases["non-ascii at the length bound"] = e
    e = json.loads(json.dumps(base))
    e["attributes"]["company"] = "é" * 301
    cases["non-ascii over the length bound"] = e
    e = json.loads(json.dumps(base))
    e["attributes"]["employee_count"] = "12"
    cases["integer as a string"] = e
    e = json.loads(json.dumps(base))
    e["attributes"]["employee_count"] = 12.0
    cases["integer as an integral float"] = e
    e = json.loads(json.dumps(base))
    e["attributes"]["external_ids"] = {"hubspot": "101", "nested": {"email": "x@y.example.com"}}
    cases["nested json property"] = e
    e = json.loads(json.dumps(base))
    e["context"]["ip"] = "2001:db8::1"
    cases["ipv6"] = e
    e = json.loads(json.dumps(touch))
    e["attributes"]["position"] = "first"
    cases["migration drops a present key"] = e
    e = json.loads(json.dumps(touch))
    e["attributes"]["touch_type"] = "visit"
    cases["migration default already set"] = e
    act = example_event(PLAN, "activity_logged", "2026-01-1")
    act["attributes"].update(duration_sec=30, rep_id="rep_1")
    cases["migration renames"] = act
    cases["repeated attribute key"] = json.dumps(base).replace('"attributes": {', '"attributes": {"company": "x", ', 1)
    cases["repeated top-level key"] = json.dumps(base).replace('{"event_type"', '{"source": "crm", "event_type"', 1)
    cases["escaped string"] = json.dumps(base).replace('"lead_created"', '"lead\\u005fcreated"', 1)
    cases["leading space"] = " " + json.dumps(base)
    cases["trailing garbage"] = json.dumps(base) + " x"
    cases["compact separators"] = json.dumps(base, separators=(",", ":"))
    return cases


NEAR = _near_canonical()


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_near_canonical_lines_agree(line_end):
    names = list(NEAR)
    records = [(i, _raw(NEAR[name])) for i, name in enumerate(names, 1)]
    fast_rows, diverted, pairs, exact = run_both(records, line_end)
    assert_fast_agrees(fast_rows, diverted, pairs, exact, dict(enumerate(names, 1)))
    taken = {names[n - 1] for n in fast_rows}
    assert {"base", "touch base", "no context", "no attributes", "compact separators", "ipv6", "migration renames",
            "migration default already set", "migration drops a present key", "integer as an integral float",
            "timestamp 2 2024-02-29T10:00:00Z", "timestamp 4 2026-01-31T23:59:59.123456789-05:30"} <= taken
    for name in ("event_id a number", "attributes a string", "attributes a list", "unknown top-level key",
                 "repeated attribute key", "repeated top-level key", "key in another case",
                 "email in an unplanned property", "timestamp 0 2026-04-31T10:00:00Z"):
        assert name not in taken, name


def test_generated_lines_agree_and_most_take_the_fast_path(tmp_path):
    generate_dataset(tmp_path, leads=300, days=60, seed=3)
    records = []
    for path in sorted((tmp_path / "landing" / "events").rglob("*.jsonl*")):
        try:
            records.extend(iter_lines(path))
        except TruncatedFile:
            pass
    records = [(i, raw) for i, (_, raw) in enumerate(records, 1)]
    fast_rows, diverted, pairs, exact = run_both(records)
    assert_fast_agrees(fast_rows, diverted, pairs, exact)
    valid = sum(r["ok"] for r in exact.values())
    assert len(fast_rows) > 0.75 * valid, (len(fast_rows), valid)


def test_the_hasher_is_the_keyed_hash_and_records_each_value_once():
    hasher = PiiHasher(KEY, ["context.ip", "attributes.email"])
    ip, email = hasher.for_field("context.ip"), hasher.for_field("attributes.email")
    ips = pa.array(["1.2.3.4", "1.2.3.4", None, "5.6.7.8"])
    emails = pa.chunked_array([["a@b.example.com", None], ["1.2.3.4"]])
    assert ip(ips).to_pylist() == [pii_hash(KEY, "1.2.3.4"), pii_hash(KEY, "1.2.3.4"), None, pii_hash(KEY, "5.6.7.8")]
    assert email(emails).to_pylist() == [pii_hash(KEY, "a@b.example.com"), None, pii_hash(KEY, "1.2.3.4")]
    assert sorted(hasher.drain().to_pylist(), key=lambda r: r["value"]) == [
        {"field": "context.ip", "value": "1.2.3.4", "hash": pii_hash(KEY, "1.2.3.4")},
        {"field": "context.ip", "value": "5.6.7.8", "hash": pii_hash(KEY, "5.6.7.8")},
        {"field": "attributes.email", "value": "a@b.example.com", "hash": pii_hash(KEY, "a@b.example.com")},
    ]
    ip(ips)  # seen before in this run: nothing new to vault
    assert hasher.drain().num_rows == 0
    hasher.forget()  # after a rollback, the values are new again
    ip(ips)
    assert hasher.drain().num_rows == 2


def test_the_pii_slots_are_the_plans_pii_fields():
    slots = pii_slots(PLAN)
    assert slots[0] == "context.ip"
    assert {"attributes.email", "attributes.phone", "attributes.first_name", "attributes.last_name",
            "attributes.street"} <= set(slots)
    assert len(slots) == len(set(slots))
