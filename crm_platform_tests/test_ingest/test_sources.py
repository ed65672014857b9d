"""CDC change streams and CRM exports become canonical events through the one ingest path: Debezium
messages of every shape and op, at-least-once delivery, snapshots; exports with real-world quirks;
exact event and ledger counts, on DuckDB and on ClickHouse."""
from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from datetime import datetime

import pytest

from .helpers import ingest, ledger, query

pytestmark = pytest.mark.usefixtures("engine")

US = 1_000_000
T0 = 1_773_000_000  # 2026-03-08


def lead_row(key: int, **changes) -> dict:
    row = {"id": key, "email": f"p{key}@example.com", "first_name": "Ana", "last_name": "Lima", "phone": None,
           "company": "Acme", "street": None, "city": "Lisbon", "postal_code": None, "state": None, "country": "PT",
           "stage": "new", "lead_source": "web", "owner_id": 7, "merged_into_id": None,
           "created_at": T0 * US, "updated_at": T0 * US}
    row.update(changes)
    return row


def message(op: str, lsn: int, after: dict | None, before: dict | None = None, *, table: str = "leads",
            snapshot: str = "false", wrapped: bool = False) -> str:
    payload = {"before": before, "after": after, "op": op, "ts_ms": T0 * 1000 + lsn,
               "source": {"version": "2.7.3.Final", "connector": "postgresql", "name": "crmdb", "ts_ms": T0 * 1000 + lsn,
                          "snapshot": snapshot, "db": "crm", "schema": "public", "table": table, "lsn": lsn}}
    if wrapped:
        return json.dumps({"schema": {"type": "struct", "fields": [], "name": "crmdb.public.leads.Envelope"},
                           "payload": payload})
    return json.dumps(payload)


def land_cdc(landing, table: str, name: str, lines: list[str], gz: bool = True) -> None:
    path = landing / "cdc" / table / name
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(body, mtime=0) if gz else body)


def events(data_dir, where: str = "true") -> list[tuple]:
    return query(data_dir, f"select event_type, event_id, attributes from core.events where source = 'cdc' and {where} "
                           "order by event_id")


def test_debezium_ops_wrappers_tombstones_redeliveries_and_order(data_dir):
    landing = data_dir / "landing"
    created = lead_row(1)
    moved = lead_row(1, stage="contacted", updated_at=(T0 + 60) * US)
    edited = lead_row(1, stage="contacted", phone="+351 21 000 0000", company="Acme SA", updated_at=(T0 + 120) * US)
    land_cdc(landing, "leads", "2026-03-08.jsonl.gz", [
        message("c", 100, created, wrapped=True),
        message("u", 300, edited, moved),            # out of order: 300 before 200
        message("u", 200, moved, created),
        message("u", 200, moved, created),            # delivered twice
        message("c", 400, lead_row(2)),
        message("d", 500, None, lead_row(2), wrapped=True),
        "null",                                       # the tombstone after the delete
        '{"op": "u", "after": {"id": 3}',             # cut off
        message("x", 600, lead_row(3)),               # no such op
    ])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (8, 5, 1, 2)
    assert query(data_dir, "select records_skipped from core.ingest_ledger") == [(1,)]
    got = {(t, eid.split(":")[-1]) for t, eid, _ in events(data_dir)}
    assert got == {("lead_created", "created"), ("lead_stage_changed", "stage"), ("lead_updated", "updated"),
                   ("record_deleted", "deleted")}
    stage = json.loads(events(data_dir, "event_type = 'lead_stage_changed'")[0][2])
    assert stage == {"from_stage": "new", "to_stage": "contacted"}  # applied by log position, not arrival
    updated = json.loads(events(data_dir, "event_type = 'lead_updated'")[0][2])
    assert updated["company"] == "Acme SA" and updated["phone"].startswith("pii:")  # changed fields only, PII hashed
    assert sorted(updated["changed_fields"]) == ["company", "phone"] and "stage" not in updated
    assert query(data_dir, "select reason_codes from core.quarantine order by source_line") == [
        (["invalid_json"],), (["cdc_unknown_op"],)]
    assert query(data_dir, "select source_id, deleted from pii.source_records order by source_id") == [("1", False), ("2", True)]
    assert query(data_dir, "select count(*) from core.events where event_id like 'cdc:leads:%' and lead_id in "
                           "('lead_1', 'lead_2')") == [(5,)]


def test_a_snapshot_after_live_changes_adds_only_what_the_stream_missed(data_dir):
    landing = data_dir / "landing"
    land_cdc(landing, "leads", "2026-03-08.jsonl.gz", [message("c", 100, lead_row(1)), message("c", 110, lead_row(2))])
    ingest(data_dir)
    # Offsets reset: a new snapshot reads both rows; row 2 changed meanwhile without a live message.
    land_cdc(landing, "leads", "2026-03-09.jsonl", [
        message("r", 900, lead_row(1), snapshot="true"),
        message("r", 901, lead_row(2, city="Porto"), snapshot="last"),
        message("c", 100, lead_row(1)),  # and a replay of an old message
    ], gz=False)
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 1, 2, 0)
    (only,) = events(data_dir, "event_id like '%:901:%'")
    assert only[0] == "lead_updated" and json.loads(only[2]) == {"city": "Porto", "changed_fields": ["city"]}


def test_opportunities_without_before_close_won_and_lost(data_dir):
    landing = data_dir / "landing"

    def opp(key, stage, amount=1000.0):
        return {"id": key, "lead_id": 1, "name": "Deal", "amount": amount, "currency": "USD", "stage": stage,
                "created_at": T0 * US, "closed_at": (T0 + 99) * US if stage.startswith("closed") else None}

    land_cdc(landing, "opportunities", "2026-03-08.jsonl.gz", [
        message("c", 10, opp(5, "prospecting"), table="opportunities"),
        message("u", 20, opp(5, "proposal"), table="opportunities"),          # no event for a stage in between
        message("u", 30, opp(5, "closed_won", 1250.0), table="opportunities"),
        message("c", 40, opp(6, "prospecting"), table="opportunities"),
        message("u", 50, opp(6, "closed_lost"), table="opportunities"),
        message("u", 60, opp(6, "closed_lost"), table="opportunities"),        # nothing changed
    ])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (6, 4, 2, 0)
    closed = query(data_dir, "select lead_id, attributes->>'opportunity_id', attributes->>'outcome', "
                             "cast(attributes->>'closed_amount' as double) from core.events "
                             "where event_type = 'opportunity_closed' order by 2")
    assert closed == [("lead_1", "5", "won", 1250.0), ("lead_1", "6", "lost", 1000.0)]


HUBSPOT = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Company Name", "Street Address", "City",
           "Postal Code", "State/Region", "Country/Region", "Create Date", "Last Modified Date", "Lifecycle Stage",
           "Original Source", "Merged Record IDs", "Job Title", "Number of Employees"]


def contact(rid: int, **kw) -> dict:
    row = dict.fromkeys(HUBSPOT, "")
    row.update({"Record ID": str(rid), "First Name": "Zoë", "Last Name": "Müller", "Email": f"c{rid}@example.com",
                "Company Name": "Acme", "Country/Region": "Germany", "Create Date": "2026-03-02 06:03",
                "Last Modified Date": "2026-03-08 09:01", "Lifecycle Stage": "Lead", "Number of Employees": "72"})
    row.update(kw)
    return row


def land_export(landing, name: str, rows: list[dict], *, encoding: str = "utf-8", header: list[str] = HUBSPOT,
                newline: str = "\n", extra: list[str] = ()) -> None:
    path = landing / "batch" / "hubspot" / "contacts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(list(header) + list(extra))
    for r in rows:
        w.writerow([r.get(h, "") for h in HUBSPOT] + [r.get(e, "") for e in extra])
    path.write_bytes(buf.getvalue().encode(encoding))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "latin-1"])
def test_an_export_in_any_encoding_with_quoted_newlines_and_empty_columns(data_dir, encoding):
    rows = [contact(1), contact(2, **{"Street Address": "Rua A 1\nApt 2"}), contact(3, Email="", **{"Phone Number": ""})]
    land_export(data_dir / "landing", "contacts-2026-03-31.csv", rows, encoding=encoding, newline="\r\n",
                extra=["Favourite Colour"])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 3, 0, 0)
    got = query(data_dir, "select e.source_line, e.lead_id, v.value, s.value, e.attributes->>'email' is null, "
                          "e.attributes->>'stage', e.occurred_at, e.attributes->>'favourite_colour' is null "
                          "from core.events e join pii.vault v on v.pii_hash = e.attributes->>'first_name' "
                          "left join pii.vault s on s.pii_hash = e.attributes->>'street' "
                          "where e.event_type = 'lead_created' order by e.source_line")
    assert [r[:3] for r in got] == [(1, "hubspot:1", "Zoë"), (2, "hubspot:2", "Zoë"), (3, "hubspot:3", "Zoë")]
    assert got[1][3] == "Rua A 1\nApt 2" and got[2][4]  # a quoted newline; an empty cell is no property
    assert got[0][5] == "new" and got[0][6] == datetime(2026, 3, 2, 11, 3)  # America/New_York to UTC
    assert got[0][7]  # the unmapped column was empty


def test_the_same_export_twice_adds_nothing_and_a_changed_one_only_its_changes(data_dir):
    landing = data_dir / "landing"
    land_export(landing, "contacts-2026-03-31.csv", [contact(1), contact(2)])
    ingest(data_dir)
    shutil.copy(landing / "batch/hubspot/contacts/contacts-2026-03-31.csv", landing / "batch/hubspot/contacts/copy.csv")
    (copy,) = ingest(data_dir)
    assert copy.status == "duplicate_content" and copy.records_read == 0
    land_export(landing, "contacts-2026-04-30.csv", [
        contact(1),                                                  # unchanged
        contact(2, **{"Lifecycle Stage": "Customer", "Job Title": "CTO", "Last Modified Date": "2026-04-20 10:00"}),
        contact(3),                                                  # new
    ])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 2, 1, 0)
    assert query(data_dir, "select event_type, lead_id from core.events where event_id like '%2026-05-01%' order by 1") == [
        ("lead_created", "hubspot:3"), ("lead_stage_changed", "hubspot:2"), ("lead_updated", "hubspot:2")]
    assert query(data_dir, "select attributes->>'job_title', attributes->>'changed_fields' from core.events "
                           "where event_type = 'lead_updated'") == [("CTO", '["job_title"]')]
    assert ingest(data_dir) == []


def test_a_renamed_header_is_rejected_with_a_clear_error_and_bad_rows_keep_their_row_number(data_dir):
    landing = data_dir / "landing"
    renamed = ["E-mail" if h == "Email" else h for h in HUBSPOT]
    land_export(landing, "contacts-2026-03-31.csv", [contact(1), contact(2)], header=renamed)
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.records_quarantined) == (2, 0, 2)
    (reason,) = {r[0][0] for r in query(data_dir, "select reasons from core.quarantine")}
    assert reason.startswith("header_mismatch: the header lacks Email (mapping hubspot_contacts.yaml)")
    path = landing / "batch/hubspot/contacts/contacts-2026-04-30.csv"
    land_export(landing, path.name, [contact(3), contact(4), contact(5)])
    text = path.read_text().splitlines()
    text[2] = text[2] + ",surplus,columns"  # row 2 does not split into the header's columns
    path.write_text("\n".join(text) + "\n")
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.records_quarantined) == (3, 2, 1)
    assert query(data_dir, "select source_line, reason_codes from core.quarantine where source_file like '%04-30%'") == [
        (2, ["malformed_row"])]
    assert query(data_dir, "select source_line from core.events where source_file like '%04-30%' order by 1") == [(1,), (3,)]


def test_a_bad_value_is_quarantined_by_the_plan_and_its_neighbours_land(data_dir):
    land_export(data_dir / "landing", "contacts-2026-03-31.csv",
                [contact(1), contact(2, **{"Number of Employees": "many"}), contact(3, Email="not-an-email")])
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.records_quarantined) == (3, 1, 2)
    assert query(data_dir, "select source_line, reason_codes from core.quarantine order by 1") == [
        (2, ["wrong_type"]), (3, ["invalid_email"])]


def test_the_generators_sources_land_with_every_cdc_row_and_export_record(data_dir, tmp_path):
    from crm_platform.synth import generate_dataset

    generate_dataset(tmp_path, leads=150, days=60, seed=8)
    for kind in ("cdc", "batch"):
        shutil.copytree(tmp_path / "landing" / kind, data_dir / "landing" / kind)
    ingest(data_dir)
    manifest = json.loads((tmp_path / "truth" / "manifest.json").read_text())
    files = {f["file"]: f for f in manifest["files"] if f["kind"].startswith(("cdc", "hubspot", "salesforce", "campaign_spend"))}
    got = ledger(data_dir)
    assert set(got) == set(files)
    for name, f in files.items():
        read, accepted, duplicate, quarantined, status = got[name]
        assert read == f["records"] - f.get("tombstones", 0) and quarantined == 0 and status == "complete", name
    with open(tmp_path / "truth" / "identity.csv", newline="") as fh:
        truth = {(r["source_system"], r["source_id"]) for r in csv.DictReader(fh) if r["source_system"] != "events"}
    records = query(data_dir, "select source_system, source_id, state from pii.source_records "
                              "where source_object in ('leads', 'contacts')")
    stored = {(system, key) for system, key, _ in records}
    # A contact HubSpot merged away is in no export, but in the survivor's Merged Record IDs.
    merged = {("hubspot", m) for system, _, state in records if system == "hubspot"
              for m in json.loads(state).get("Merged Record IDs", [])}
    assert stored | merged == truth and merged - stored
