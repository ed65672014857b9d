"""Two ways a change of a source record could vanish, and how each now ends: a row whose lead_id
template has an empty cell is quarantined naming the empty column (its neighbours land, a later row
with the cell filled creates the record); a later export with the same as-of as an earlier one
applies its changes as updates, in landing order, with event ids that stay the same for the same
files landed in the same order. Exact ledger counts, events and reasons, on DuckDB and ClickHouse."""
from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime, timedelta

import pytest

from crm_platform.attribution.spend import current_spend_sql

from .helpers import ingest, ledger, query, warehouse
from .test_campaign_spend import land_spend, row, spend_events
from .test_sources import land_cdc, lead_row, message

OPPORTUNITIES = ["Opportunity ID", "Opportunity Name", "Account Name", "Lead ID", "Amount", "Stage", "Close Date",
                 "Created Date", "Lead Source", "Probability (%)"]
LEADS = ["Lead ID", "First Name", "Last Name", "Email", "Phone", "Company", "Street", "City", "Zip/Postal Code",
         "State/Province", "Country", "Lead Source", "Lead Status", "Created Date", "Master Record ID"]


def opportunity(oid: str, lead: str, stage: str = "Prospecting", **kw) -> dict:
    r = {"Opportunity ID": oid, "Opportunity Name": f"Deal {oid}", "Account Name": "Acme", "Lead ID": lead,
         "Amount": "1000", "Stage": stage, "Close Date": "04/02/2026" if stage.startswith("Closed") else "",
         "Created Date": "03/02/2026 09:15 AM", "Lead Source": "Web", "Probability (%)": "10"}
    r.update(kw)
    return r


def sf_lead(lid: str, **kw) -> dict:
    r = dict.fromkeys(LEADS, "")
    r.update({"Lead ID": lid, "First Name": "Ana", "Last Name": "Lima", "Email": f"{lid.lower()}@example.com",
              "Company": "Acme", "Country": "Portugal", "Lead Source": "Web", "Lead Status": "Open - Not Contacted",
              "Created Date": "03/02/2026 09:15 AM"})
    r.update(kw)
    return r


def land_csv(landing, folder: str, name: str, header: list[str], rows: list[dict]) -> None:
    path = landing / "batch" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(h, "") for h in header])
    path.write_text(buf.getvalue(), encoding="utf-8")


def counts(o) -> tuple:
    return o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined


def balanced(data_dir) -> bool:
    return all(r == a + d + q for r, a, d, q, _ in ledger(data_dir).values())


def opp_events(data_dir) -> list[tuple]:
    return query(data_dir, "select event_id, lead_id, source_file from core.events "
                           "where event_id like 'salesforce:opportunities:%' order by event_id")


# --- 1. an empty lead_id cell ------------------------------------------------------------------------


@pytest.mark.usefixtures("engine")
def test_an_export_row_with_an_empty_lead_id_cell_is_quarantined_naming_it_and_the_rest_lands(data_dir):
    landing = data_dir / "landing"
    folder = "salesforce/opportunities"
    land_csv(landing, folder, "opportunities-2026-03-31.csv", OPPORTUNITIES, [
        opportunity("0061", "00Q1"),
        opportunity("0062", ""),                      # no Lead ID: no lead for its events
        opportunity("0063", "00Q3", "Closed Won"),
    ])
    (o,) = ingest(data_dir)
    assert counts(o) == (3, 2, 0, 1)
    assert query(data_dir, "select source_line, reason_codes, reasons from core.quarantine") == [
        (2, ["missing_lead_id"], ['missing_lead_id: the row has no Lead ID (lead_id "salesforce:{Lead ID}")'])]
    day1 = "batch/salesforce/opportunities/opportunities-2026-03-31.csv"
    assert opp_events(data_dir) == [
        ("salesforce:opportunities:0061:2026-04-01:created", "salesforce:00Q1", day1),
        ("salesforce:opportunities:0063:2026-04-01:closed", "salesforce:00Q3", day1),
        ("salesforce:opportunities:0063:2026-04-01:created", "salesforce:00Q3", day1)]
    # The quarantined row made no state: a later export with its Lead ID creates it.
    assert query(data_dir, "select source_id, lead_id from pii.source_records order by 1") == [
        ("0061", "salesforce:00Q1"), ("0063", "salesforce:00Q3")]
    # Next day: 0062 has its Lead ID and closes; 0061 closes with its Lead ID emptied (a known record
    # keeps its lead); 0063 unchanged.
    land_csv(landing, folder, "opportunities-2026-04-01.csv", OPPORTUNITIES, [
        opportunity("0061", "", "Closed Lost"), opportunity("0062", "00Q2", "Closed Won"),
        opportunity("0063", "00Q3", "Closed Won")])
    (o,) = ingest(data_dir)
    assert counts(o) == (3, 2, 1, 0)
    day2 = "batch/salesforce/opportunities/opportunities-2026-04-01.csv"
    assert [e for e in opp_events(data_dir) if e[2] == day2] == [
        ("salesforce:opportunities:0061:2026-04-02:closed", "salesforce:00Q1", day2),
        ("salesforce:opportunities:0062:2026-04-02:closed", "salesforce:00Q2", day2),
        ("salesforce:opportunities:0062:2026-04-02:created", "salesforce:00Q2", day2)]
    assert query(data_dir, "select attributes->>'outcome' from core.events "
                           "where event_id = 'salesforce:opportunities:0061:2026-04-02:closed'") == [("lost",)]
    assert balanced(data_dir) and query(data_dir, "select count(*) from core.quarantine") == [(1,)]


@pytest.mark.usefixtures("engine")
def test_a_lead_carries_over_empty_cells_across_files_of_one_run(data_dir):
    """Three exports landed at once: the record's lead comes from its first row, through two rows
    with the cell empty (the third row's previous row has none either)."""
    landing = data_dir / "landing"
    folder = "salesforce/opportunities"
    land_csv(landing, folder, "opportunities-2026-03-30.csv", OPPORTUNITIES, [opportunity("0064", "00Q4")])
    land_csv(landing, folder, "opportunities-2026-03-31.csv", OPPORTUNITIES,
             [opportunity("0064", "", "Negotiation"), opportunity("0065", "")])
    land_csv(landing, folder, "opportunities-2026-04-01.csv", OPPORTUNITIES,
             [opportunity("0064", "", "Closed Won"), opportunity("0065", "", "Closed Won")])
    outcomes = ingest(data_dir)
    assert [counts(o) for o in outcomes] == [(1, 1, 0, 0), (2, 0, 1, 1), (2, 1, 0, 1)]
    assert [(e, lead) for e, lead, _ in opp_events(data_dir)] == [
        ("salesforce:opportunities:0064:2026-03-31:created", "salesforce:00Q4"),
        ("salesforce:opportunities:0064:2026-04-02:closed", "salesforce:00Q4")]
    assert query(data_dir, "select source_file, source_line, reasons from core.quarantine order by 1, 2") == [
        ("batch/salesforce/opportunities/opportunities-2026-03-31.csv", 2,
         ['missing_lead_id: the row has no Lead ID (lead_id "salesforce:{Lead ID}")']),
        ("batch/salesforce/opportunities/opportunities-2026-04-01.csv", 2,
         ['missing_lead_id: the row has no Lead ID (lead_id "salesforce:{Lead ID}")'])]
    assert query(data_dir, "select source_id, lead_id from pii.source_records") == [("0064", "salesforce:00Q4")]
    assert balanced(data_dir)


@pytest.mark.usefixtures("engine")
def test_a_cdc_opportunity_without_a_lead_is_quarantined_and_a_known_one_keeps_its_lead(data_dir):
    def opp(key, lead, stage="prospecting"):
        return {"id": key, "lead_id": lead, "name": "Deal", "amount": 10.0, "currency": "USD", "stage": stage,
                "created_at": 1_773_000_000_000_000, "closed_at": None}

    land_cdc(data_dir / "landing", "opportunities", "2026-03-08.jsonl.gz", [
        message("c", 10, opp(5, None), table="opportunities"),                 # a new record without a lead
        message("c", 20, opp(6, 3), table="opportunities"),
        message("u", 30, opp(6, None, "closed_won"), table="opportunities"),   # known: keeps lead_3
    ])
    (o,) = ingest(data_dir)
    assert counts(o) == (3, 2, 0, 1)
    assert query(data_dir, "select source_line, reasons from core.quarantine") == [
        (1, ['cdc_missing_lead_id: the row has no lead_id (lead_id "lead_{lead_id}")'])]
    assert query(data_dir, "select event_id, lead_id from core.events order by 1") == [
        ("cdc:opportunities:6:20:created", "lead_3"), ("cdc:opportunities:6:30:closed", "lead_3")]


# --- 2. two exports with the same as-of ----------------------------------------------------------------


@pytest.mark.usefixtures("engine")
def test_a_corrected_spend_export_of_the_same_month_applies_as_updates(data_dir):
    landing = data_dir / "landing"
    land_spend(landing, "2026-06", [row("2026-06-01"), row("2026-06-02", spend="50.00")])  # mid-month
    (o,) = ingest(data_dir)
    assert counts(o) == (2, 2, 0, 0)
    # The final export of June, under another name: 2 June corrected, 1 June as it was, 3 June new.
    final = landing.joinpath("batch/marketing/campaign_spend/spend-2026-06-final.csv")
    land_spend(landing, "2026-06", [row("2026-06-01"), row("2026-06-02", spend="55.00"),
                                    row("2026-06-03", spend="20.00")]).rename(final)
    (o,) = ingest(data_dir)
    assert counts(o) == (3, 2, 1, 0)
    # A second correction of the same month: a third position on the same as-of.
    land_spend(landing, "2026-06", [row("2026-06-02", spend="56.00", clicks="41")]).rename(
        final.with_name("spend-2026-06-final-2.csv"))
    (o,) = ingest(data_dir)
    assert counts(o) == (1, 1, 0, 0)
    prefix = "marketing:campaign_spend:cmp_a:"
    assert [(eid.removeprefix(prefix), occurred, a["spend"], a.get("changed_fields")) for eid, occurred, _, a
            in spend_events(data_dir)] == [
        ("2026-06-01:2026-07-01:created", "2026-07-01T00:00:00", 100.0, None),
        ("2026-06-02:2026-07-01:created", "2026-07-01T00:00:00", 50.0, None),
        ("2026-06-02:2026-07-01~1:updated", "2026-07-01T00:00:00", 55.0, ["spend"]),
        ("2026-06-02:2026-07-01~2:updated", "2026-07-01T00:00:00", 56.0, ["spend", "clicks"]),
        ("2026-06-03:2026-07-01:created", "2026-07-01T00:00:00", 20.0, None)]
    with warehouse(read_only=True) as wh:
        current = wh.fetchall(current_spend_sql(wh))
    assert [(str(d), s) for d, _, _, _, s, *_ in current] == [("2026-06-01", 100.0), ("2026-06-02", 56.0),
                                                              ("2026-06-03", 20.0)]
    # The same content again under another name adds nothing; other bytes with the same rows, nothing new.
    shutil.copy(final, final.with_name("spend-2026-06-copy.csv"))
    (o,) = ingest(data_dir)
    assert o.status == "duplicate_content" and counts(o) == (0, 0, 0, 0)
    land_spend(landing, "2026-06", [row("2026-06-03", spend="20.00"), row("2026-06-02", spend="56.00", clicks="41")]
               ).rename(final.with_name("spend-2026-06-reordered.csv"))
    (o,) = ingest(data_dir)
    assert counts(o) == (2, 0, 2, 0)
    assert len(spend_events(data_dir)) == 5 and balanced(data_dir)
    # An older export landed late changes nothing, even with other values. The record's state: the
    # latest values, as of the end of June, the third later export of that day to hold it (-3).
    land_spend(landing, "2026-05", [row("2026-06-02", spend="1.00")])
    (o,) = ingest(data_dir)
    assert counts(o) == (1, 0, 1, 0)
    assert query(data_dir, "select cast(state->>'spend' as double), position_a, position_b from pii.source_records "
                           "where source_id = 'cmp_a:2026-06-02' order by updated_at desc limit 1") == [
        (56.0, (datetime(2026, 7, 1) - datetime(1970, 1, 1)) // timedelta(microseconds=1), -3)]


def _spend_files(landing) -> None:
    """Three files of June, in landing order (and path order)."""
    folder = landing.joinpath("batch/marketing/campaign_spend")
    land_spend(landing, "2026-06", [row("2026-06-01"), row("2026-06-02", spend="50.00")]).rename(folder / "spend-2026-06-a.csv")
    land_spend(landing, "2026-06", [row("2026-06-02", spend="55.00")]).rename(folder / "spend-2026-06-b.csv")
    land_spend(landing, "2026-06", [row("2026-06-01", spend="90.00"), row("2026-06-02", spend="57.00")]).rename(
        folder / "spend-2026-06-c.csv")


def test_the_same_files_in_the_same_order_give_the_same_events_in_one_run_or_three(data_dir, tmp_path, monkeypatch):
    def events(d) -> list[tuple]:
        return [(eid, json.loads(a)) for eid, a in query(d, "select event_id, attributes from core.events order by 1")]

    _spend_files(data_dir / "landing")
    outcomes = ingest(data_dir)  # one group
    assert [counts(o) for o in outcomes] == [(2, 2, 0, 0), (1, 1, 0, 0), (2, 2, 0, 0)]
    together = events(data_dir)
    assert [(eid.split(":", 2)[2], a["spend"]) for eid, a in together] == [
        ("cmp_a:2026-06-01:2026-07-01:created", 100.0), ("cmp_a:2026-06-01:2026-07-01~1:updated", 90.0),
        ("cmp_a:2026-06-02:2026-07-01:created", 50.0), ("cmp_a:2026-06-02:2026-07-01~1:updated", 55.0),
        ("cmp_a:2026-06-02:2026-07-01~2:updated", 57.0)]
    # Another warehouse, the same files landed one by one: the same events.
    other = tmp_path / "other"
    monkeypatch.setenv("CRM_DATA_DIR", str(other))
    monkeypatch.setenv("CRM_DUCKDB_PATH", str(other / "warehouse.duckdb"))
    staging = tmp_path / "staging"
    _spend_files(staging)
    target = other.joinpath("landing/batch/marketing/campaign_spend")
    target.mkdir(parents=True)
    for name in ("spend-2026-06-a.csv", "spend-2026-06-b.csv", "spend-2026-06-c.csv"):
        shutil.copy(staging.joinpath("batch/marketing/campaign_spend", name), target / name)
        assert len(ingest(other)) == 1
    assert events(other) == together


@pytest.mark.usefixtures("engine")
def test_salesforce_lead_exports_with_the_same_date_apply_in_landing_order(data_dir):
    landing = data_dir / "landing"
    land_csv(landing, "salesforce/leads", "leads-2026-04-30.csv", LEADS, [sf_lead("00Q1"), sf_lead("00Q2")])
    (o,) = ingest(data_dir)
    assert counts(o) == (2, 2, 0, 0)
    # Re-exported the same day, later: 00Q1 moved on and changed company, 00Q2 as it was.
    land_csv(landing, "salesforce/leads", "leads-2026-04-30-rerun.csv", LEADS, [
        sf_lead("00Q1", Company="Acme SA", **{"Lead Status": "Working - Contacted"}), sf_lead("00Q2")])
    (o,) = ingest(data_dir)
    assert counts(o) == (2, 1, 1, 0)
    # Two more of the same date in one run (path order is landing order): both of 00Q2's changes apply.
    land_csv(landing, "salesforce/leads", "leads-2026-04-30-x.csv", LEADS, [sf_lead("00Q2", City="Porto")])
    land_csv(landing, "salesforce/leads", "leads-2026-04-30-y.csv", LEADS, [sf_lead("00Q2", City="Braga")])
    assert [counts(o) for o in ingest(data_dir)] == [(1, 1, 0, 0), (1, 1, 0, 0)]
    got = query(data_dir, "select event_id, lead_id, attributes from core.events where event_type <> 'lead_created' "
                          "order by event_id")
    assert [(eid, lead, json.loads(a)) for eid, lead, a in got] == [
        ("salesforce:leads:00Q1:2026-05-01~1:stage", "salesforce:00Q1", {"from_stage": "new", "to_stage": "contacted"}),
        ("salesforce:leads:00Q1:2026-05-01~1:updated", "salesforce:00Q1",
         {"company": "Acme SA", "changed_fields": ["company"]}),
        # ~2, ~3: the rerun (unchanged for 00Q2) was the first later export of that day to hold it
        ("salesforce:leads:00Q2:2026-05-01~2:updated", "salesforce:00Q2", {"city": "Porto", "changed_fields": ["city"]}),
        ("salesforce:leads:00Q2:2026-05-01~3:updated", "salesforce:00Q2", {"city": "Braga", "changed_fields": ["city"]})]
    assert query(data_dir, "select arg_max(state->>'City', updated_at) from pii.source_records "
                           "where source_id = '00Q2'") == [("Braga",)]
    # The next day's export: an ordinary position again.
    land_csv(landing, "salesforce/leads", "leads-2026-05-01.csv", LEADS, [sf_lead("00Q2", City="Faro")])
    (o,) = ingest(data_dir)
    assert counts(o) == (1, 1, 0, 0)
    assert query(data_dir, "select event_id from core.events where source_file like '%05-01%'") == [
        ("salesforce:leads:00Q2:2026-05-02:updated",)]
    assert balanced(data_dir)


def test_a_state_stored_before_the_numbering_counts_as_the_first_of_its_day(data_dir):
    """States written before ties were numbered hold a row key (>= 1) in position_b: read as 0."""
    landing = data_dir / "landing"
    land_csv(landing, "salesforce/leads", "leads-2026-04-30.csv", LEADS, [sf_lead("00Q1")])
    ingest(data_dir)
    with warehouse() as wh:
        wh.execute("update pii.source_records set position_b = 1")
    land_csv(landing, "salesforce/leads", "leads-2026-04-30-rerun.csv", LEADS, [sf_lead("00Q1", City="Porto")])
    (o,) = ingest(data_dir)
    assert counts(o) == (1, 1, 0, 0)
    assert query(data_dir, "select event_id from core.events where event_type = 'lead_updated'") == [
        ("salesforce:leads:00Q1:2026-05-01~1:updated",)]
    assert query(data_dir, "select position_b from pii.source_records") == [(-1,)]


@pytest.mark.usefixtures("engine")
def test_a_debezium_message_without_its_commit_time_is_quarantined(data_dir):
    """An update or delete is dated by its commit time (`source.ts_ms`, else `ts_ms`): without one the
    event had no occurred_at and vanished."""
    def bare(op: str, lsn: int, **rows) -> str:
        m = json.loads(message(op, lsn, rows.get("after"), rows.get("before")))
        del m["ts_ms"], m["source"]["ts_ms"]
        return json.dumps(m)

    land_cdc(data_dir / "landing", "leads", "2026-03-08.jsonl.gz", [
        message("c", 100, lead_row(1)),
        bare("u", 200, after=lead_row(1, city="Porto")),
        bare("d", 300, before=lead_row(1, city="Porto")),
        message("u", 400, lead_row(1, city="Braga")),
    ])
    (o,) = ingest(data_dir)
    assert counts(o) == (4, 2, 0, 2)
    assert query(data_dir, "select source_line, reasons from core.quarantine order by 1") == [
        (2, ["cdc_missing_timestamp: no source.ts_ms or ts_ms (when the change was made)"]),
        (3, ["cdc_missing_timestamp: no source.ts_ms or ts_ms (when the change was made)"])]
    assert [(eid, json.loads(a)) for eid, a in query(
        data_dir, "select event_id, attributes from core.events where event_type = 'lead_updated'")] == [
        ("cdc:leads:1:400:updated", {"city": "Braga", "changed_fields": ["city"]})]
    assert query(data_dir, "select deleted from pii.source_records") == [(False,)]
