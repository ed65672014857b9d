"""A change of a source record that could vanish, and how it now ends: a row whose lead_id template
has an empty cell is quarantined naming the empty column (its neighbours land, a later row with the
cell filled creates the record). Exact ledger counts, events and reasons, on DuckDB and ClickHouse."""
from __future__ import annotations

import csv
import io

import pytest

from .helpers import ingest, ledger, query
from .test_sources import land_cdc, message

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
