"""HubSpot and Salesforce exports, Debezium change events and the spend export are shaped like the real ones."""
from __future__ import annotations

import collections
import json
import re

import pytest

from .readers import BOM, csv_rows, event_lines

HUBSPOT = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Company Name", "Street Address", "City",
           "Postal Code", "State/Region", "Country/Region", "Create Date", "Last Modified Date", "Lifecycle Stage",
           "Original Source", "Merged Record IDs"]
SF_LEADS = ["Lead ID", "First Name", "Last Name", "Email", "Phone", "Company", "Street", "City", "Zip/Postal Code",
            "State/Province", "Country", "Lead Source", "Lead Status", "Created Date", "Master Record ID"]
SF_OPPS = ["Opportunity ID", "Opportunity Name", "Account Name", "Lead ID", "Amount", "Stage", "Close Date",
           "Created Date", "Lead Source", "Probability (%)"]
SPEND = ["date", "channel", "campaign_id", "campaign_name", "spend", "currency", "impressions", "clicks"]


def _sf_checksum_ok(i: str) -> bool:
    suffix = ""
    for chunk in (i[0:5], i[5:10], i[10:15]):
        bits = sum(1 << k for k, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return len(i) == 18 and i[15:] == suffix


def _files(sample, pattern):
    files = sorted(sample.landing.glob(pattern))
    assert files, pattern
    return files


def test_hubspot_exports(sample):
    files = _files(sample, "batch/hubspot/contacts/contacts-*.csv")
    assert [f.name for f in files][-1] == "contacts-2026-06-29.csv" and 2 <= len(files) <= 6
    counts, merged_ids, newline_streets, record_ids = [], set(), 0, []
    for f in files:
        assert f.read_bytes().startswith(BOM)
        header, rows = csv_rows(f)
        assert header == HUBSPOT + ["Job Title", "Number of Employees"]
        counts.append(len(rows))
        for r in rows:
            row = dict(zip(header, r))
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row["Create Date"])
            assert row["Last Modified Date"] >= row["Create Date"]
            merged_ids.update(x for x in row["Merged Record IDs"].split(";") if x)
            newline_streets += "\n" in row["Street Address"]
        record_ids.append({r[0] for r in rows})
    assert counts == sorted(counts)  # later snapshots have more contacts
    assert merged_ids and newline_streets
    assert merged_ids & record_ids[0] and not merged_ids & record_ids[-1]  # merged contacts leave later exports
    assert any("" in r for r in csv_rows(files[-1])[1])


def test_salesforce_exports(sample):
    for f in _files(sample, "batch/salesforce/leads/leads-*.csv"):
        header, rows = csv_rows(f)
        assert header == SF_LEADS
        ids = {r[0] for r in rows}
        for r in rows:
            row = dict(zip(header, r))
            assert row["Lead ID"].startswith("00Q") and _sf_checksum_ok(row["Lead ID"])
            assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d [AP]M", row["Created Date"])
            assert not row["Master Record ID"] or row["Master Record ID"] in ids
    masters = [r for r in rows if r[-1]]
    assert masters
    for f in _files(sample, "batch/salesforce/opportunities/opportunities-*.csv"):
        header, rows = csv_rows(f)
        assert header == SF_OPPS
        for r in rows:
            row = dict(zip(header, r))
            assert row["Opportunity ID"].startswith("006") and _sf_checksum_ok(row["Opportunity ID"])
            assert row["Lead ID"].startswith("00Q") and float(row["Amount"]) > 0
    stages = {dict(zip(header, r))["Stage"] for r in rows}
    assert {"Closed Won", "Closed Lost"} <= stages


def test_debezium_change_events(sample):
    files = _files(sample, "cdc/*/*.jsonl*")
    ops, shapes, tables = collections.Counter(), collections.Counter(), set()
    dup_lines = out_of_order = 0
    snapshots = set()
    merged_then_deleted = set()
    merged_rows = set()
    for f in files:
        lines, tail = event_lines(f)
        assert tail == b""
        seen = set()
        last_lsn = -1
        for k, raw in enumerate(lines):
            if raw == b"null":
                prev = json.loads(lines[k - 1])
                assert prev.get("payload", prev)["op"] == "d"  # a tombstone follows each delete
                continue
            msg = json.loads(raw)
            shapes["wrapped" if "schema" in msg else "bare"] += 1
            p = msg["payload"] if "schema" in msg else msg
            assert p["source"]["connector"] == "postgresql"
            assert set(p["source"]) >= {"version", "name", "ts_ms", "db", "schema", "table", "txId", "lsn"}
            tables.add(p["source"]["table"])
            ops[p["op"]] += 1
            if p["op"] == "r":
                snapshots.add(f.name[:10])
            if p["op"] == "d":
                assert k + 1 < len(lines) and lines[k + 1] == b"null"
                if p["before"]["id"] in merged_rows:
                    merged_then_deleted.add(p["before"]["id"])
            if p["op"] == "u" and p["source"]["table"] == "leads" and p["after"]["merged_into_id"]:
                merged_rows.add(p["after"]["id"])
            if p["op"] in "cu" and p["source"]["table"] == "leads":
                assert isinstance(p["after"]["created_at"], int) and p["after"]["created_at"] > 1.7e15
            dup_lines += raw in seen
            seen.add(raw)
            if p["op"] != "r":
                out_of_order += p["source"]["lsn"] < last_lsn
                last_lsn = p["source"]["lsn"]
    assert tables == {"leads", "opportunities"}
    assert set(ops) == {"r", "c", "u", "d"}
    assert shapes["wrapped"] > 100 and shapes["bare"] > 100
    assert len(snapshots) == 2  # the initial snapshot and one after an offset reset
    assert dup_lines > 5 and out_of_order > 5
    assert merged_then_deleted
    wrapped_files = sum(1 for f in files if event_lines(f)[0][0].startswith(b'{"schema":'))
    assert 0.3 <= wrapped_files / len(files) <= 0.7


def test_spend_export_and_channels(sample):
    spend = collections.defaultdict(float)
    for f in _files(sample, "batch/marketing/campaign_spend/spend-*.csv"):
        assert re.fullmatch(r"spend-\d{4}-\d\d\.csv", f.name)
        header, rows = csv_rows(f)
        assert header == SPEND
        for r in rows:
            row = dict(zip(header, r))
            assert row["date"][:7] == f.name[6:13]
            spend[row["channel"]] += float(row["spend"])
            assert int(row["clicks"]) >= 0 and row["currency"] == "USD"
    assert len(spend) >= 6
    for channel, r in sample.effects.items():
        assert float(r["spend"]) == pytest.approx(spend.get(channel, 0.0), abs=0.01)
