"""Everything truth/ says can be checked against the landed files, and is."""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import zlib

import pytest

from .readers import BOM, csv_rows, event_lines, raw_content


def test_manifest_lists_every_landed_file_with_its_hash_and_records(sample):
    files = {f["file"]: f for f in sample.manifest["files"]}
    on_disk = {p.relative_to(sample.landing).as_posix() for p in sample.landing.rglob("*") if p.is_file()}
    assert set(files) == on_disk
    for rel, info in files.items():
        path = sample.landing / rel
        data = path.read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest(), rel
        assert info["bytes"] == len(data)
        if info["kind"] == "events" or info["kind"].startswith("cdc_"):
            lines, _ = event_lines(path)
            assert info["records"] == len(lines), rel
        else:
            _, rows = csv_rows(path)
            assert info["records"] == len(rows), rel
    totals = sample.manifest["totals"]
    assert totals["bytes"] == sum(f["bytes"] for f in files.values())
    assert totals["event_records"] == sum(f["records"] for f in files.values() if f["kind"] == "events")
    assert sample.manifest["arguments"] == sample.args


def test_expected_outcomes_per_event_file_add_up(sample):
    by_file = collections.Counter((r["file"], r["expected"]) for r in sample.invalid.values())
    for f in sample.manifest["files"]:
        if f["kind"] != "events":
            continue
        e = f["expected"]
        assert e["accepted"] + e["duplicate"] + e["quarantined"] == f["records"], f["file"]
        assert e["quarantined"] == by_file[(f["file"], "quarantine")]
        assert e["duplicate"] == by_file[(f["file"], "duplicate")]
    totals = sample.manifest["totals"]
    assert totals["events_quarantined"] == sample.summary["invalid_records"] == sum(
        1 for r in sample.invalid.values() if r["expected"] == "quarantine")


# Each kind of planted invalid record and the reason code the plan's validator must give it.
KIND_REASON = {
    "truncated_json": "invalid_json", "non_object_json": "not_an_object", "invalid_utf8": "invalid_utf8",
    "missing_required": "missing_required", "null_required": "null_required", "wrong_type": "wrong_type",
    "enum_violation": "enum_violation", "unknown_event_type": "unknown_event_type",
    "unknown_schema_version": "unknown_schema_version", "naive_timestamp": "naive_timestamp",
    "impossible_timestamp": "invalid_timestamp", "source_not_allowed": "source_not_allowed",
    "very_long_value": "too_long",
}


def test_each_invalid_record_is_there_and_of_its_kind(sample):
    kinds = collections.Counter()
    for (rel, n), row in sample.invalid.items():
        raw = sample.lines[(rel, n)]
        kinds[row["kind"]] += 1
        if row["expected"] == "duplicate":
            original = sample.lines[(row["original_file"], int(row["original_line"]))]
            assert raw == original
            assert sample.reasons[(rel, n)] == []
            assert json.loads(raw)["event_id"] == row["event_id"]
            same_file = row["original_file"] == rel
            assert row["kind"] == ("duplicate_resend_same_file" if same_file else "duplicate_resend_cross_file")
            assert (row["original_file"], int(row["original_line"])) < (rel, n)  # the original comes first
            assert (row["original_file"], int(row["original_line"])) not in sample.invalid
        else:
            reasons = sample.reasons[(rel, n)]
            assert KIND_REASON[row["kind"]] in reasons, (row, reasons)
            if row["kind"] == "very_long_value":
                assert len(raw) > 100_000
    assert set(KIND_REASON) <= set(kinds)
    assert kinds["duplicate_resend_same_file"] and kinds["duplicate_resend_cross_file"]


def test_invalid_rate_is_between_one_and_two_percent(sample):
    total = len(sample.lines)
    quarantined = sum(1 for r in sample.invalid.values() if r["expected"] == "quarantine")
    assert 0.01 <= quarantined / total <= 0.02


def test_event_ids_of_accepted_lines_are_unique(sample):
    duplicates = {(r["file"], int(r["line"])) for r in sample.invalid.values() if r["expected"] == "duplicate"}
    ids = [ev["event_id"] for rel, n, ev in sample.valid if (rel, n) not in duplicates]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("evt_") and len(i) == 24 for i in ids)
    accepted = sum(f["expected"]["accepted"] for f in sample.manifest["files"] if f["kind"] == "events")
    assert accepted == len(ids)


def _source_ids(sample) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {"events": set(), "cdc": set(), "hubspot": set(), "salesforce": set()}
    for _, _, ev in sample.valid:
        if ev.get("lead_id"):
            ids["events"].add(ev["lead_id"])
    for path in sample.landing.glob("cdc/leads/*"):
        for raw in event_lines(path)[0]:
            msg = json.loads(raw)
            if msg is None:
                continue
            payload = msg.get("payload", msg)
            for image in (payload["before"], payload["after"]):
                if image:
                    ids["cdc"].add(str(image["id"]))
    for path in sample.landing.glob("batch/hubspot/contacts/*.csv"):
        header, rows = csv_rows(path)
        for r in rows:
            row = dict(zip(header, r))
            ids["hubspot"].add(row["Record ID"])
            ids["hubspot"].update(x for x in row["Merged Record IDs"].split(";") if x)
    for path in sample.landing.glob("batch/salesforce/leads/*.csv"):
        header, rows = csv_rows(path)
        for r in rows:
            ids["salesforce"].add(dict(zip(header, r))["Lead ID"])
    return ids


def test_identity_covers_exactly_the_source_records(sample):
    truth: dict[str, set[str]] = collections.defaultdict(set)
    for r in sample.identity:
        truth[r["source_system"]].add(r["source_id"])
    found = _source_ids(sample)
    for system in ("events", "cdc", "hubspot", "salesforce"):
        assert truth[system] == found[system], system
    pairs = [(r["source_system"], r["source_id"]) for r in sample.identity]
    assert len(pairs) == len(set(pairs))  # one person per source record


def test_every_person_has_identity_rows_and_some_have_several_lead_ids(sample):
    persons = collections.defaultdict(set)
    for r in sample.identity:
        persons[r["person_id"]].add(r["source_system"])
    assert {r["person_id"] for r in sample.leads} <= set(persons)
    events_ids = collections.defaultdict(set)
    for r in sample.identity:
        if r["source_system"] == "events":
            events_ids[r["person_id"]].add(r["source_id"])
    assert all(set(r["lead_ids"].split(";")) == events_ids[r["person_id"]] for r in sample.leads)
    assert all("events" in persons[r["person_id"]] for r in sample.leads)
    assert len(sample.leads) == sample.summary["persons"] == sample.args["leads"]
    multi = [r for r in sample.leads if ";" in r["lead_ids"]]
    assert 0.02 <= len(multi) / len(sample.leads) <= 0.12  # real duplicates in the events stream
    merged = [ev for _, _, ev in sample.valid if ev["event_type"] == "lead_merged"]
    assert merged


def test_converted_persons_have_their_won_opportunity_in_the_events(sample):
    won = {}
    for _, _, ev in sample.valid:
        if ev["event_type"] == "opportunity_closed" and ev["attributes"]["outcome"] == "won":
            won[ev["attributes"]["opportunity_id"]] = ev
    converted = [r for r in sample.leads if r["converted"] == "1"]
    assert len(converted) == sample.summary["conversions"] > 0
    for r in converted:
        ev = won.pop(r["won_opportunity_id"])
        assert ev["lead_id"] == r["won_lead_id"]
        assert ev["lead_id"] in r["lead_ids"].split(";")
        assert float(r["revenue"]) == pytest.approx(ev["attributes"]["closed_amount"])
    assert not won  # and no won event for anyone else


def test_base_conversion_rate_is_realistic(sample):
    p = [float(r["true_conversion_probability"]) for r in sample.leads]
    assert 0.10 <= sum(p) / len(p) <= 0.25
    drawn = sum(int(r["will_convert"]) for r in sample.leads) / len(sample.leads)
    assert 0.10 <= drawn <= 0.25
    # Leads with a full 90 days of observation: the share that won within them.
    early = [r for r in sample.leads if r["created_at"] < "2026-04-01"]
    assert len(early) > 100
    rate = sum(int(r["converted"]) for r in early) / len(early)
    assert 0.10 <= rate <= 0.25


def test_file_quirks(sample):
    q = sample.manifest["quirks"]
    assert (sample.landing / q["empty_file"]).stat().st_size == 0
    bom = (sample.landing / q["bom_file"]).read_bytes()
    assert bom.startswith(BOM) and bom[3:4] == b"{"
    crlf = (sample.landing / q["crlf_file"]).read_bytes()
    assert crlf.count(b"\r\n") == crlf.count(b"\n") > 0
    t = q["truncated_gzip"]
    path = sample.landing / t["file"]
    with pytest.raises((EOFError, gzip.BadGzipFile, zlib.error)), gzip.open(path) as f:
        f.read()
    _, complete = raw_content(path)
    assert not complete
    lines, _ = event_lines(path)
    assert len(lines) == t["readable_records"] < t["records_written"]
    assert all(sample.reasons[(t["file"], n)] == [] for n in range(1, len(lines) + 1))  # before the break, all valid
    assert not any(k[0] == t["file"] for k in sample.invalid)
