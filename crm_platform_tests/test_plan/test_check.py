"""`plan check` and `plan export` as functions: exact output lines and exit codes."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from crm_platform.plan.check import export_command, run_plan_check
from crm_platform.plan.examples import example_event
from crm_platform_tests.test_plan.conftest import edit


def run(files, plan_dir=None) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = run_plan_check([Path(f) for f in files], plan_dir=plan_dir, echo=lines.append)
    return code, lines


def line(event: dict) -> bytes:
    return json.dumps(event).encode()


def test_valid_file_exits_0(tmp_path, plan):
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"\n".join(line(example_event(plan, t)) for t in sorted(plan.event_types)) + b"\n")
    n = len(plan.event_types)
    assert run([path]) == (0, [f"{n} records, {n} valid, 0 invalid (plan {plan.version})"])


def test_bom_crlf_blank_lines_invalid_utf8_and_bad_records(tmp_path, plan):
    good = line(example_event(plan, "lead_created"))
    naive = example_event(plan, "lead_created")
    naive["occurred_at"] = "2026-01-10T15:12:30"
    naive["attributes"]["stage"] = "won"
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\r\n"  # 1: BOM + CRLF, valid
                     + b"\r\n"  # 2: blank, not a record
                     + b'{"event_type": "lead_created", "note": "caf\xe9"}\r\n'  # 3: Latin-1, not UTF-8
                     + line(naive) + b"\r\n"  # 4: two problems
                     + b"   \n"  # 5: blank
                     + b"[]\r\n"  # 6
                     + good)  # 7: valid, no final newline
    code, lines = run([path])
    assert code == 1
    assert lines == [
        f"{path}:3: invalid_utf8: byte 0xe9 at position 43 is not UTF-8",
        f"{path}:4: naive_timestamp: occurred_at has no UTC offset (end it with Z or +HH:MM); enum_violation: "
        "attributes.stage 'won' is not one of: new, contacted, engaged, qualified, opportunity, customer, disqualified",
        f"{path}:6: not_an_object: record is a JSON array, expected an object",
        f"5 records, 2 valid, 3 invalid (plan {plan.version})",
    ]


def test_truncated_gzip_reports_the_break_after_checking_what_came_before(tmp_path, plan):
    events = []
    for i in range(3000):
        event = example_event(plan, "campaign_touch")
        event["event_id"] = f"evt_{i}"
        if i == 7:
            event["source"] = "tv"
        events.append(line(event))
    blob = gzip.compress(b"\n".join(events) + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    code, lines = run([path])
    assert code == 1
    assert lines[0] == (f"{path}:8: source_not_allowed: source 'tv' is not allowed for campaign_touch "
                        "(allowed: ads, crm, email_platform, hubspot, web, webform)")
    checked = int(lines[1].split(" after line ")[1].split(";")[0])
    assert 0 < checked < 3000
    assert lines[1:] == [
        f"{path}: truncated gzip stream after line {checked}; the records before it were checked, anything after it "
        "is lost",
        f"{checked} records, {checked - 1} valid, 1 invalid (plan {plan.version})",
    ]


def test_whole_gzip_file_and_several_files(tmp_path, plan):
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(line(example_event(plan, "manual_label")) + b"\n"))
    plain = tmp_path / "b.jsonl"
    plain.write_bytes(line(example_event(plan, "lead_merged")) + b"\n")
    assert run([gz, plain]) == (0, [f"2 records, 2 valid, 0 invalid (plan {plan.version})"])


def test_unreadable_files(tmp_path, plan):
    missing = tmp_path / "missing.jsonl"
    fake_gz = tmp_path / "fake.jsonl.gz"
    fake_gz.write_bytes(b'{"not": "gzip"}\n')
    code, lines = run([missing, fake_gz])
    assert code == 1
    assert lines == [
        f"{missing}: cannot read: No such file or directory",
        f"{fake_gz}: not a readable gzip file (corrupt gzip data (Error -3 while decompressing data: incorrect "
        "header check))",
        f"0 records, 0 valid, 0 invalid (plan {plan.version})",
    ]


def test_plan_only(plan):
    versions = sum(len(et.versions) for et in plan.event_types.values())
    assert run([]) == (0, [f"plan {plan.version} is valid: {len(plan.event_types)} event types, {versions} versions"])


def test_broken_plan_is_listed_and_fails(plan_copy):
    edit(plan_copy / "events/manual_label.yaml", "retention_days: 1095", "retention_days: 0")
    edit(plan_copy / "events/consent_changed.yaml", "type: boolean", "type: bool")
    code, lines = run([], plan_dir=plan_copy)
    assert code == 1
    assert lines == [
        "events/consent_changed.yaml: versions[0] (2026-01-1).properties.granted: unknown type 'bool' (expected one "
        "of: string, integer, number, boolean, timestamp, enum, email, url, json)",
        "events/manual_label.yaml: retention_days: must be a positive integer (days), got a number (0)",
        "plan invalid: 2 problem(s)",
    ]


def test_check_against_another_plan_dir(plan_copy, tmp_path):
    edit(plan_copy / "events/manual_label.yaml", "sources: [manual, api]", "sources: [manual, api, import]")
    event = {**example_event_from(plan_copy, "manual_label"), "source": "import"}
    path = tmp_path / "labels.jsonl"
    path.write_bytes(line(event))
    code, lines = run([path], plan_dir=plan_copy)
    assert code == 0 and lines[-1].startswith("1 records, 1 valid, 0 invalid (plan ")
    code, lines = run([path])  # the package's plan does not allow it
    assert code == 1 and "source_not_allowed" in lines[0]


def example_event_from(plan_dir, event_type):
    from crm_platform.plan.loader import load_plan

    return example_event(load_plan(plan_dir), event_type)


def test_export_command(tmp_path, plan):
    out: list[str] = []
    assert export_command(tmp_path / "schemas", "jsonschema", echo=out.append) == 0
    versions = sum(len(et.versions) for et in plan.event_types.values())
    assert out == [f"wrote {versions} JSON Schemas for plan {plan.version} under {tmp_path / 'schemas'}"]
    assert (tmp_path / "schemas/activity_logged/2026-06-1.schema.json").is_file()
    assert export_command(tmp_path / "x", "avro", echo=out.append) == 2
    assert out[-1] == "unknown export format 'avro' (expected one of: jsonschema)"
