"""Every kind of bad input ends as accepted, duplicate or quarantined with its reason, and the ledger
counts equal the file's records (the issue's list, case by case, with exact counts)."""
from __future__ import annotations

import gzip
import json
import zlib

import pytest

from .helpers import event, ingest, land, ledger, query, touch

LONG = "x" * 100_001
pytestmark = pytest.mark.usefixtures("engine")  # every case on DuckDB and on ClickHouse


def reasons(data_dir, file):
    return [r[0] for r in query(data_dir, "select reason_codes from core.quarantine where source_file = ? "
                                          "order by source_line", [f"events/{file}"])]


@pytest.mark.parametrize("name, line, code", [
    ("truncated_line", '{"event_type": "lead_created", "schema_version": "2026-01-1", "event_id": "e', "invalid_json"),
    ("array", "[1, 2]", "not_an_object"),
    ("bare_string", '"lead_created"', "not_an_object"),
    ("invalid_utf8", b'{"event_type": "lead_created", "attributes": {"first_name": "Ren\xe9"}}', "invalid_utf8"),
    ("naive_timestamp", event("e_naive", occurred_at="2026-03-10T15:12:30"), "naive_timestamp"),
    ("impossible_timestamp", event("e_feb30", occurred_at="2026-02-30T10:00:00Z"), "invalid_timestamp"),
    ("unknown_type", {**event("e_type"), "event_type": "lead_teleported"}, "unknown_event_type"),
    ("unknown_version", {**event("e_ver"), "schema_version": "2025-13-1"}, "unknown_schema_version"),
    ("missing_required", touch("e_nochannel", channel=None) | {"attributes": {}}, "missing_required"),
    ("missing_event_id", {k: v for k, v in event("x").items() if k != "event_id"}, "missing_required"),
    ("null_required", event("e_nolead", lead_id=None) | {"lead_id": None}, "null_required"),
    ("wrong_type", event("e_amount", "opportunity_created", source="crm", opportunity_id="o1", amount="12k"), "wrong_type"),
    ("enum_violation", touch("e_tv", channel="tv"), "enum_violation"),
    ("source_not_allowed", event("e_src", source="ml"), "source_not_allowed"),
    ("very_long_value", event("e_long", company=LONG), "too_long"),
])
def test_each_bad_record_is_quarantined_with_its_reason_and_its_neighbours_land(data_dir, name, line, code):
    land(data_dir / "landing", f"{name}.jsonl", [event(f"{name}_before"), line, event(f"{name}_after")])
    (outcome,) = ingest(data_dir)
    assert (outcome.records_read, outcome.events_accepted, outcome.events_duplicate, outcome.records_quarantined) == (3, 2, 0, 1)
    assert code in reasons(data_dir, f"{name}.jsonl")[0]
    assert query(data_dir, "select source_line from core.quarantine") == [(2,)]
    assert sorted(r[0] for r in query(data_dir, "select event_id from core.events")) == [f"{name}_after", f"{name}_before"]


def test_bom_and_crlf_are_read_as_the_records_they_frame(data_dir):
    landing = data_dir / "landing"
    land(landing, "bom.jsonl", [event("bom1"), event("bom2")], prefix=b"\xef\xbb\xbf")
    land(landing, "crlf.jsonl", [event("crlf1"), "{not json", event("crlf2")], newline=b"\r\n")
    outcomes = {o.source_file: o for o in ingest(data_dir)}
    assert outcomes["events/bom.jsonl"].events_accepted == 2
    o = outcomes["events/crlf.jsonl"]
    assert (o.records_read, o.events_accepted, o.records_quarantined) == (3, 2, 1)
    (raw,) = query(data_dir, "select raw_record from core.quarantine")[0]
    assert raw == "{not json"  # the line end is not part of the record


def test_blank_lines_are_not_records_but_keep_line_numbers(data_dir):
    land(data_dir / "landing", "blank.jsonl", [event("b1"), "", "   ", "{oops", event("b2")])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.records_quarantined) == (3, 2, 1)
    assert query(data_dir, "select source_line from core.quarantine") == [(4,)]
    assert query(data_dir, "select event_id, source_line from core.events order by source_line") == [("b1", 1), ("b2", 5)]


def test_duplicate_ids_within_a_file_across_files_and_across_runs(data_dir):
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [event("d1"), event("d2"), event("d1")])
    land(landing, "b.jsonl", [event("d2"), event("d3")])
    ingest(data_dir)
    land(landing, "c.jsonl", [event("d3"), event("d4")])
    ingest(data_dir)
    assert ledger(data_dir) == {
        "events/a.jsonl": (3, 2, 1, 0, "complete"),
        "events/b.jsonl": (2, 1, 1, 0, "complete"),
        "events/c.jsonl": (2, 1, 1, 0, "complete"),
    }
    assert query(data_dir, "select count(*), count(distinct event_id) from core.events") == [(4, 4)]
    # The first occurrence wins: d1 keeps line 1 of a.jsonl.
    assert query(data_dir, "select source_file, source_line from core.events where event_id = 'd1'") == [("events/a.jsonl", 1)]


def test_an_empty_file_gets_a_balanced_ledger_row(data_dir):
    (data_dir / "landing" / "events").mkdir(parents=True)
    (data_dir / "landing" / "events" / "empty.jsonl").write_bytes(b"")
    (o,) = ingest(data_dir)
    assert (o.records_read, o.status) == (0, "complete")
    assert ledger(data_dir) == {"events/empty.jsonl": (0, 0, 0, 0, "complete")}


def test_the_same_content_under_another_name_adds_nothing(data_dir):
    landing = data_dir / "landing"
    first = land(landing, "day1.jsonl", [event("s1"), event("s2")])
    ingest(data_dir)
    (landing / "events" / "day1-copy.jsonl").write_bytes(first.read_bytes())
    (o,) = ingest(data_dir)
    assert o.status == "duplicate_content" and o.records_read == 0
    assert query(data_dir, "select count(*) from core.events") == [(2,)]
    assert list(ledger(data_dir)) == ["events/day1.jsonl"]
    assert query(data_dir, "select source_file, outcome from core.landed_files order by source_file") == [
        ("events/day1-copy.jsonl", "duplicate_content"), ("events/day1.jsonl", "ingested")]
    assert ingest(data_dir) == []  # seen paths are not read again


def test_a_truncated_gzip_keeps_the_records_before_the_break_and_is_marked_partial(data_dir):
    landing = data_dir / "landing"
    whole = gzip.compress(b"".join(json.dumps(event(f"g{i}")).encode() + b"\n" for i in range(200)), mtime=0)
    (landing / "events").mkdir(parents=True)
    (landing / "events" / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    readable = zlib.decompressobj(wbits=31).decompress(whole[: len(whole) // 2]).count(b"\n")
    (o,) = ingest(data_dir)
    assert o.status == "partial" and "truncated gzip" in o.error
    assert 0 < o.records_read == o.events_accepted == readable < 200
    assert query(data_dir, "select status, error is not null, records_read from core.ingest_ledger") == [("partial", True, readable)]
    assert query(data_dir, "select count(*) from core.events") == [(readable,)]


def test_offsets_are_kept_and_occurred_at_is_utc(data_dir):
    land(data_dir / "landing", "tz.jsonl", [event("t1", occurred_at="2026-03-10T23:30:00-05:00"),
                                            event("t2", occurred_at="2026-03-11T01:15:00+05:30"),
                                            event("t3", occurred_at="2026-03-11T04:00:00Z")])
    ingest(data_dir)
    rows = query(data_dir, "select event_id, strftime(occurred_at, '%Y-%m-%d %H:%M'), occurred_at_offset_minutes, "
                           "event_date::varchar from core.events order by event_id")
    assert rows == [("t1", "2026-03-11 04:30", -300, "2026-03-11"), ("t2", "2026-03-10 19:45", 330, "2026-03-10"),
                    ("t3", "2026-03-11 04:00", 0, "2026-03-11")]


def test_the_clear_payload_of_a_rejected_line_is_kept_byte_for_byte_in_the_pii_schema(data_dir):
    bad = b'{"event_type": "lead_created", "attributes": {"email": "jos\xe9@example.com"}}'
    land(data_dir / "landing", "latin1.jsonl", [event("p1"), bad, '{"email": "ana@example.com", "oops"'], newline=b"\r\n")
    ingest(data_dir)
    # hex(): the bytes exactly, whatever the engine's client makes of a string that is not UTF-8.
    payloads = query(data_dir, "select source_line, lower(hex(raw_record)) from pii.quarantine_payloads order by source_line")
    assert payloads == [(2, bad.hex()), (3, b'{"email": "ana@example.com", "oops"'.hex())]
    redacted = [r[0] for r in query(data_dir, "select raw_record from core.quarantine order by source_line")]
    assert all("example.com" not in r for r in redacted), redacted
