"""HubSpot contacts and Salesforce leads/opportunities: periodic full exports, written row by row.

All snapshot files are open at once and every person adds their rows to each snapshot that
existed by then, as of that snapshot (stage, edits, merges); so rows come in record-id order and
nothing is held for the whole population.
"""
from __future__ import annotations

import csv
from pathlib import Path

from .clock import (
    DAY,
    date_text,
    hubspot_datetime,
    salesforce_date,
    salesforce_datetime,
)
from .funnel import Journey, SourceRec

HUBSPOT_COLUMNS = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Company Name", "Street Address",
                   "City", "Postal Code", "State/Region", "Country/Region", "Create Date", "Last Modified Date",
                   "Lifecycle Stage", "Original Source", "Merged Record IDs", "Job Title", "Number of Employees"]
SF_LEAD_COLUMNS = ["Lead ID", "First Name", "Last Name", "Email", "Phone", "Company", "Street", "City",
                   "Zip/Postal Code", "State/Province", "Country", "Lead Source", "Lead Status", "Created Date",
                   "Master Record ID"]
SF_OPP_COLUMNS = ["Opportunity ID", "Opportunity Name", "Account Name", "Lead ID", "Amount", "Stage", "Close Date",
                  "Created Date", "Lead Source", "Probability (%)"]
_SF_STAGE = {"prospecting": ("Prospecting", 10), "proposal": ("Proposal/Price Quote", 50),
             "negotiation": ("Negotiation/Review", 75), "closed_won": ("Closed Won", 100),
             "closed_lost": ("Closed Lost", 0)}


def snapshot_instants(period) -> list[int]:
    """Every 30 days of the period, plus the last day; an export at instant t is named after the day before t."""
    out = [period.start + k * 30 * DAY for k in range(1, period.days // 30 + 1)]
    out = [t for t in out if t < period.end]
    return out + [period.end]


def _state(rec: SourceRec, at: int) -> tuple[dict, int]:
    f = dict(rec.fields)
    modified = rec.created
    for ts, changes in rec.history:
        if ts > at:
            break
        f.update(changes)
        modified = ts
    return f, modified


class _Csv:
    def __init__(self, path: Path, header: list[str], *, bom: bool, crlf: bool):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # open for the whole run: every chunk of people adds rows
        self.f = open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="")  # noqa: SIM115
        self.w = csv.writer(self.f, lineterminator="\r\n" if crlf else "\n")
        self.w.writerow(header)
        self.rows = 0

    def row(self, values) -> None:
        self.w.writerow(values)
        self.rows += 1

    def close(self) -> None:
        self.f.close()


class ExportWriter:
    def __init__(self, root: Path, period):
        self.root, self.period = root, period
        self.instants = snapshot_instants(period)
        self.hs, self.sf, self.sfo = [], [], []
        for t in self.instants:
            day = date_text(t - DAY)
            # HubSpot: UTF-8 with a BOM, LF; Salesforce: UTF-8, CRLF
            self.hs.append(_Csv(root / f"batch/hubspot/contacts/contacts-{day}.csv", HUBSPOT_COLUMNS,
                                bom=True, crlf=False))
            self.sf.append(_Csv(root / f"batch/salesforce/leads/leads-{day}.csv", SF_LEAD_COLUMNS,
                                bom=False, crlf=True))
            self.sfo.append(_Csv(root / f"batch/salesforce/opportunities/opportunities-{day}.csv", SF_OPP_COLUMNS,
                                 bom=False, crlf=True))

    def add(self, j: Journey) -> tuple[list[str], list[str]]:
        """Write the person's rows into every snapshot; returns the HubSpot and Salesforce ids that landed."""
        hs_ids: list[str] = []
        sf_ids: list[str] = []
        for k, at in enumerate(self.instants):
            for rec in j.hubspot:
                if rec.created >= at or (rec.merged_at is not None and rec.merged_at < at):
                    continue  # HubSpot drops merged-away contacts from exports
                f, modified = _state(rec, at)
                merged = [str(r.rec_id) for r in j.hubspot if r.merged_into is rec and r.merged_at < at]
                for r in j.hubspot:
                    if r.merged_into is rec and r.merged_at < at:
                        modified = max(modified, r.merged_at)
                self.hs[k].row([rec.rec_id, f["First Name"], f["Last Name"], f["Email"], f["Phone Number"],
                                f["Company Name"], f["Street Address"], f["City"], f["Postal Code"], f["State/Region"],
                                f["Country/Region"], hubspot_datetime(rec.created), hubspot_datetime(modified),
                                f["Lifecycle Stage"], f["Original Source"], ";".join(merged), f["Job Title"],
                                f["Number of Employees"]])
                for x in [str(rec.rec_id)] + merged:
                    if x not in hs_ids:
                        hs_ids.append(x)
            for rec in j.salesforce:
                if rec.created >= at:
                    continue
                f, _ = _state(rec, at)
                master = rec.merged_into.rec_id if rec.merged_at is not None and rec.merged_at < at else ""
                self.sf[k].row([rec.rec_id, f["First Name"], f["Last Name"], f["Email"], f["Phone"], f["Company"],
                                f["Street"], f["City"], f["Zip/Postal Code"], f["State/Province"], f["Country"],
                                f["Lead Source"], f["Lead Status"], salesforce_datetime(rec.created), master])
                if rec.rec_id not in sf_ids:
                    sf_ids.append(rec.rec_id)
            for so in j.sf_opps:
                if so.created >= at:
                    continue
                f = so.fields
                stage = "prospecting"
                for ts, st in f["Stages"]:
                    if ts < at:
                        stage = st
                name, prob = _SF_STAGE[stage]
                closed = stage.startswith("closed")
                self.sfo[k].row([so.rec_id, f["Opportunity Name"], f["Account Name"], f["Lead"].rec_id,
                                 f"{f['Amount']:.2f}",
                                 name, salesforce_date(f["Closed At"] if closed else f["Expected Close"]),
                                 salesforce_datetime(so.created), f["Lead Source"], prob])
        return hs_ids, sf_ids

    def close(self) -> list[dict]:
        infos = []
        kinds = (("hubspot_contacts", self.hs), ("salesforce_leads", self.sf), ("salesforce_opportunities", self.sfo))
        for kind, files in kinds:
            for c in files:
                c.close()
                infos.append({"file": str(c.path.relative_to(self.root)), "kind": kind, "records": c.rows})
        return infos
