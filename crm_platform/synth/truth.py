"""The ground truth under truth/: who is who, the planted effects, the true labels, and what every
landed file contains. Written as the data is generated, so it always matches the files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .campaigns import CHANNELS, EFFECTS
from .clock import iso_utc
from .funnel import Journey


class TruthWriter:
    def __init__(self, root: Path, period):
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.period = root, period
        self._files = {}
        self.identity = self._open("identity.csv", ["source_system", "source_id", "person_id"])
        self.leads = self._open("leads.csv", [
            "person_id", "created_at", "primary_lead_id", "lead_ids", "creation_method", "country", "seniority",
            "employee_count", "channels_exposed", "meetings_held", "replied", "inbound_activities",
            "true_conversion_probability", "will_convert", "converted", "converted_at", "revenue",
            "won_opportunity_id", "won_lead_id", "final_stage"])
        self.invalids = self._open("invalid_records.csv", ["file", "line", "kind", "expected", "event_id",
                                                           "original_file", "original_line"])
        n = len(CHANNELS)
        self.exposed = [0] * n
        self.exposed_converted = [0] * n
        self.incremental = [0.0] * n
        self.persons = self.converted = self.lead_records = 0
        self.invalid_count = self.duplicate_count = 0
        self.persons_total = 0

    def _open(self, name, header):
        f = open(self.root / name, "w", encoding="utf-8", newline="")  # noqa: SIM115 - written across chunks
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        self._files[name] = f
        return w

    def invalid(self, file: str, line: int, kind: str, expected: str, event_id: str, original_file: str,
                original_line: int) -> None:
        self.invalids.writerow([file, line, kind, expected, event_id, original_file, original_line or ""])
        if expected == "quarantine":
            self.invalid_count += 1
        else:
            self.duplicate_count += 1

    def person(self, j: Journey, lead_ids, cdc_keys, hs_ids, sf_ids, end: int) -> None:
        p = j.person
        pid = p.person_id
        for system, ids in (("events", lead_ids), ("cdc", cdc_keys), ("hubspot", hs_ids), ("salesforce", sf_ids)):
            for x in ids:
                self.identity.writerow([system, x, pid])
        if not lead_ids:  # created after the period: not a lead yet
            return
        self.persons += 1
        self.lead_records += len(lead_ids)
        converted = j.converted_at is not None
        self.converted += converted
        for c in j.exposed:
            i = CHANNELS.index(c)
            self.exposed[i] += 1
            self.exposed_converted[i] += converted
            self.incremental[i] += j.p - j.p_without[c]
        stage = "new"
        for ts, st in j.stages:
            if ts < end:
                stage = st
        won = j.won_opp
        won_lead = ""
        if converted:
            lead = won.lead
            merged = lead.merged_at is not None and won.closed_at >= lead.merged_at
            won_lead = lead.merged_into.lead_id if merged else lead.lead_id
        self.leads.writerow([
            pid, iso_utc(p.t_lead), j.leads[0].lead_id, ";".join(lead_ids), j.method, p.country, p.seniority,
            p.employees, ";".join(j.exposed), j.meetings_held, j.replied, j.inbound, f"{j.p:.6f}", int(j.will_convert),
            int(converted), iso_utc(j.converted_at) if converted else "", f"{j.revenue:.2f}",
            f"opp_{won.opp_id}" if converted else "", won_lead, stage])

    def close(self, book, touch_counts: dict, spend: dict, conversion_model: dict, manifest: dict) -> None:
        for f in self._files.values():
            f.close()
        with open(self.root / "channel_effects.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["channel", "log_odds_effect", "campaigns", "spend", "persons_exposed",
                        "persons_exposed_converted",
                        "conversion_rate_exposed", "touch_events", "expected_incremental_conversions"])
            for i, c in enumerate(CHANNELS):
                n = self.exposed[i]
                w.writerow([c, f"{EFFECTS[c]:.2f}", len(book.by_channel[c]), f"{spend.get(c, 0.0):.2f}", n,
                            self.exposed_converted[i], f"{self.exposed_converted[i] / n:.4f}" if n else "",
                            touch_counts.get(i, 0), f"{self.incremental[i]:.3f}"])
        manifest["conversion_model"] = conversion_model
        with open(self.root / "manifest.json", "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)
            f.write("\n")
