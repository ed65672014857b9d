"""A hand-built landing zone with known duplicates across every source, and helpers to run the
identity graph on it (the test key, a fixed clock)."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from crm_platform.identity.config import IdentityConfig
from crm_platform.identity.run import IdentityRun, run_identity
from crm_platform.plan.loader import load_plan
from crm_platform_tests.test_ingest.helpers import (
    KEY,
    event,
    ingest,
    land,
    query,
    warehouse,
)
from crm_platform_tests.test_ingest.test_sources import (
    contact,
    land_cdc,
    land_export,
    lead_row,
    message,
)

SALESFORCE = ["Lead ID", "First Name", "Last Name", "Email", "Phone", "Company", "Street", "City", "Zip/Postal Code",
              "State/Province", "Country", "Lead Source", "Lead Status", "Created Date", "Master Record ID"]
RULES_ONLY = IdentityConfig.from_dict({"probabilistic": {"enabled": False}})
T1 = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


def land_salesforce(landing: Path, name: str, rows: list[dict]) -> None:
    path = landing / "batch" / "salesforce" / "leads" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(SALESFORCE)
    for r in rows:
        w.writerow([r.get(h, "") for h in SALESFORCE])
    path.write_bytes(buf.getvalue().encode("utf-8"))


def lead(event_id, lead_id, day, **attrs):
    return event(event_id, "lead_created", occurred_at=f"2026-03-{day:02d}T10:00:00Z", lead_id=lead_id, **attrs)


def land_world(landing: Path) -> None:
    """Who is who (the expected clusters, canonical first):
    - lead_1 (Jane Doe, webform): lead_2 (same gmail with dots and a +tag), hubspot:100 (external id
      on lead_1's event, e-mail in capitals), CDC row 1 (lead_1 itself), salesforce:00QA (e-mail)
    - lead_3 (Bob Smith): lead_4 (Robert Smith, same phone), CDC row 7 (merged into 3 in the CRM)
    - hubspot:101: hubspot:102 (merged in HubSpot; gone from the export)
    - salesforce:00QB: salesforce:00QC (Master Record ID)
    - lead_5 and lead_6 share a placeholder e-mail: apart."""
    land(landing, "web-1/2026-W10.jsonl", [
        lead("e1", "lead_1", 1, email="jane.doe@gmail.com", first_name="Jane", last_name="Doe", company="Acme Inc",
             country="US", external_ids={"hubspot": "100"}),
        lead("e2", "lead_2", 5, email="Jane.Doe+news@googlemail.com", first_name="Jane", last_name="Doe",
             company="ACME", country="US"),
        lead("e3", "lead_3", 2, email="bob@smith-family.com", first_name="Bob", last_name="Smith",
             phone="(617) 432-4954", country="US"),
        lead("e4", "lead_4", 6, email="robert.smith@globex.com", first_name="Robert", last_name="Smith",
             phone="+1 617 432 4954", country="US"),
        lead("e5", "lead_5", 3, email="test@test.com", first_name="Ann", last_name="Lee", country="US"),
        lead("e6", "lead_6", 4, email="test@test.com", first_name="Tom", last_name="Kay", country="US"),
        event("a2", "activity_logged", occurred_at="2026-03-07T10:00:00Z", lead_id="lead_2", source="crm",
              activity_type="call", direction="outbound", outcome="connected"),
    ])
    land_export(landing, "contacts-2026-03-10.csv", [
        contact(100, **{"First Name": "Jane", "Last Name": "Doe", "Email": "JANE.DOE@GMAIL.COM", "Create Date": "2026-03-01 08:00"}),
        contact(101, **{"First Name": "Li", "Last Name": "Wei", "Email": "li.wei@initech.com", "Merged Record IDs": "102",
                        "Create Date": "2026-03-02 08:00"}),
    ])
    land_salesforce(landing, "leads-2026-03-10.csv", [
        {"Lead ID": "00QA", "First Name": "Jane", "Last Name": "Doe", "Email": "janedoe@gmail.com", "Country": "US",
         "Lead Status": "Open - Not Contacted", "Created Date": "3/8/2026 9:00 AM"},
        {"Lead ID": "00QB", "First Name": "Kim", "Last Name": "Park", "Email": "kim@umbrella.com", "Country": "US",
         "Lead Status": "Open - Not Contacted", "Created Date": "3/3/2026 9:00 AM"},
        {"Lead ID": "00QC", "First Name": "Kimberly", "Last Name": "Park", "Email": "kpark@umbrella.com", "Country": "US",
         "Lead Status": "Open - Not Contacted", "Created Date": "3/9/2026 9:00 AM", "Master Record ID": "00QB"},
    ])
    merged = lead_row(7, email="b.smith@smith-family.com", first_name="Bobby", last_name="Smith", country="US",
                      merged_into_id=3)
    land_cdc(landing, "leads", "2026-03-10.jsonl.gz", [
        message("c", 1, lead_row(1, email="jane.doe@gmail.com", first_name="Jane", last_name="Doe", country="US")),
        message("c", 2, lead_row(7, email="b.smith@smith-family.com", first_name="Bobby", last_name="Smith", country="US")),
        message("u", 3, merged, lead_row(7, email="b.smith@smith-family.com", first_name="Bobby", last_name="Smith",
                                         country="US")),
        message("d", 4, None, merged),
    ])


EXPECTED = {
    "lead_1": {("events", "lead_1"), ("events", "lead_2"), ("hubspot", "100"), ("cdc", "1"), ("salesforce", "00QA")},
    "lead_3": {("events", "lead_3"), ("events", "lead_4"), ("cdc", "7")},
    "hubspot:101": {("hubspot", "101"), ("hubspot", "102")},
    "salesforce:00QB": {("salesforce", "00QB"), ("salesforce", "00QC")},
    "lead_5": {("events", "lead_5")},
    "lead_6": {("events", "lead_6")},
}


def resolve_now(data_dir: Path, when: datetime = T1, config: IdentityConfig = RULES_ONLY, full: bool = False) -> IdentityRun:
    ingest(data_dir)
    with warehouse() as wh:
        return run_identity(wh, data_dir / "landing", load_plan(), KEY, config, now=when, full=full)


def clusters(data_dir: Path) -> dict[str, set]:
    out: dict[str, set] = {}
    for system, sid, canonical in query(data_dir, "select source_system, source_id, lead_id from identity.lead_identity_map"):
        out.setdefault(canonical, set()).add((system, sid))
    return out
