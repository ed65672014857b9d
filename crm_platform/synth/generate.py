"""`generate_dataset`: the seeded synthetic landing zone and its ground truth.

People are simulated in chunks in lead-creation order; each chunk's events, change events, export
rows and truth rows are written before the next chunk starts, so memory does not grow with the
number of leads. Every random draw comes from a stream keyed by (seed, purpose, chunk).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import reference as ref
from .campaigns import CHANNELS, EFFECTS, CampaignBook
from .cdc import CdcWriter
from .clock import Period, iso_utc
from .events import EventRenderer
from .exports import ExportWriter
from .funnel import (
    B0,
    COEF,
    MAX_INBOUND,
    MAX_MEETINGS,
    NOISE_SD,
    Ids,
    Simulator,
    anonymous_visits,
)
from .landing_events import EventLanding
from .people import Companies, draw_person, lead_creation_times
from .rand import CHUNK, FINAL, WORLD, WRITE, Draws, cumulative, generator
from .sinks import drain, sha256_of, write_whole
from .truth import TruthWriter

CHUNK_SIZE = 2000
ANONYMOUS_PER_LEAD = 0.8
_COUNTRY_CUM = cumulative(ref.COUNTRY_WEIGHTS)


def _clear_previous(data_dir: Path) -> None:
    """Remove what an earlier run of the generator wrote (and only that), so runs do not mix."""
    manifest = data_dir / "truth" / "manifest.json"
    landing = data_dir / "landing"
    if manifest.exists():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        for f in old.get("files", []):
            (landing / f["file"]).unlink(missing_ok=True)
        for name in ("identity.csv", "leads.csv", "channel_effects.csv", "invalid_records.csv", "manifest.json"):
            (data_dir / "truth" / name).unlink(missing_ok=True)
        for dirpath, _, _ in sorted(os.walk(landing), key=lambda x: -len(x[0])):
            if Path(dirpath) != landing and not any(Path(dirpath).iterdir()):
                Path(dirpath).rmdir()
    elif landing.exists() and any(p.is_file() for p in landing.rglob("*")):
        raise FileExistsError(f"{landing} holds files this generator did not write; use an empty data directory")


def generate_dataset(data_dir: Path, leads: int = 2000, days: int = 120, seed: int = 42) -> dict:
    """Write `data_dir/landing/...` and `data_dir/truth/...`; return a summary of what was written.

    `leads` people become leads during the `days` before 2026-06-30T00:00:00Z. Summary keys: data_dir,
    files (count per file kind), bytes, events (event lines landed), events_accepted, duplicates,
    invalid_records (lines to quarantine), leads (lead ids in the events, duplicates included),
    persons, conversions (won within the period), anonymous_visitors.
    """
    if leads < 50:
        raise ValueError("leads must be at least 50")
    if days < 28:
        raise ValueError("days must be at least 28 (four weekly files per producer)")
    data_dir = Path(data_dir)
    _clear_previous(data_dir)
    spool = data_dir / ".synth-spool"
    shutil.rmtree(spool, ignore_errors=True)  # left over by an interrupted run
    landing_dir, truth_dir = data_dir / "landing", data_dir / "truth"
    landing_dir.mkdir(parents=True, exist_ok=True)
    period = Period(days)

    world = generator(seed, WORLD)
    companies = Companies(world, max(60, leads // 3))
    times = lead_creation_times(world, leads, period.start, days)
    book = CampaignBook(days)
    sim = Simulator(period, book, Ids(int(world.integers(0, 1 << 30))))
    truth = TruthWriter(truth_dir, period)
    landing = EventLanding(landing_dir, period, truth)
    renderer = EventRenderer(landing, book, period)
    final = Draws(generator(seed, FINAL))
    cdc = CdcWriter(landing_dir, period, spool, final)
    exports = ExportWriter(landing_dir, period)
    anonymous = 0

    for k, lo in enumerate(range(0, leads, CHUNK_SIZE)):
        hi = min(lo + CHUNK_SIZE, leads)
        d = Draws(generator(seed, CHUNK, k))
        landing.begin_chunk(Draws(generator(seed, WRITE, k)))
        for i in range(lo, hi):
            j = sim.simulate(draw_person(d, i, int(times[i]), companies, period.end), d)
            lead_ids = renderer.render(j, d)
            cdc_keys = cdc.add(j)
            hs_ids, sf_ids = exports.add(j)
            truth.person(j, lead_ids, cdc_keys, hs_ids, sf_ids, period.end)
        for _ in range(round((hi - lo) * ANONYMOUS_PER_LEAD)):  # visitors who never become leads
            cc = d.weighted(ref.COUNTRIES, _COUNTRY_CUM)
            city = d.pick(ref.CITIES[cc])
            ip = f"{d.pick(ref.IP_BLOCKS[cc])}.{d.below(256)}.{d.below(256)}.{d.int_between(1, 254)}"
            renderer.render_anonymous(d, anonymous_visits(d, book, period.start, period.end), cc, ip,
                                      d.pick(ref.USER_AGENTS), city[3], ref.LOCALES[cc])
            anonymous += 1
        landing.flush()
        cdc.flush()

    files = landing.close() + cdc.close(final) + exports.close()
    drain()

    def write_spend(rel: str, data: bytes, rows: int) -> dict:
        write_whole(landing_dir / rel, data)
        return {"file": rel, "kind": "campaign_spend", "records": rows}

    files += book.write_spend(generator(seed, FINAL, 1), period.start, "batch/marketing/campaign_spend", write_spend)
    args = {"leads": leads, "days": days, "seed": seed}
    manifest = _manifest(landing_dir, files, period, cdc, landing, truth, anonymous, args)
    truth.close(book, landing.touch_counts, book.spend_by_channel, _conversion_model(), manifest)

    totals = manifest["totals"]
    kinds: dict[str, int] = {}
    for f in files:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    return {
        "data_dir": str(data_dir), "files": kinds, "bytes": totals["bytes"],
        "events": totals["event_records"], "events_accepted": totals["events_accepted"],
        "duplicates": totals["events_duplicate"], "invalid_records": totals["events_quarantined"],
        "leads": truth.lead_records, "persons": truth.persons, "conversions": truth.converted,
        "anonymous_visitors": anonymous,
    }


def _manifest(landing_dir: Path, files: list[dict], period, cdc, landing, truth, anonymous: int, args: dict) -> dict:
    """Hash every landed file and total what the truth promises about them."""
    files.sort(key=lambda f: f["file"])
    for f in files:
        path = landing_dir / f["file"]
        f["sha256"] = sha256_of(path)
        f["bytes"] = path.stat().st_size
    events = [f for f in files if f["kind"] == "events"]
    totals = {
        "files": len(files), "bytes": sum(f["bytes"] for f in files),
        "event_records": sum(f["records"] for f in events),
        "events_accepted": sum(f["expected"]["accepted"] for f in events),
        "events_duplicate": sum(f["expected"]["duplicate"] for f in events),
        "events_quarantined": sum(f["expected"]["quarantined"] for f in events),
        "persons": truth.persons, "lead_records": truth.lead_records, "conversions": truth.converted,
        "anonymous_visitors": anonymous,
    }
    return {
        "generator": "crm_platform.synth", "arguments": args,
        "period": {"start": iso_utc(period.start), "end": iso_utc(period.end)},
        "cdc": {"snapshots": [iso_utc(t) for t in cdc.snapshots]},
        "quirks": landing.quirks,
        "notes": ("Expected per-file event outcomes assume each producer's files are read in path order "
                  "(chronological); re-sends always repeat an earlier line of the same producer. "
                  "The truncated gzip's partial last line is not a record."),
        "totals": totals, "files": files,
    }


def _conversion_model() -> dict:
    return {
        "definition": ("logit(p) = intercept + sum of channel_effects over the channels that touched the person "
                       "+ meetings_held*min(meetings held, 3) + replied*(any reply) "
                       "+ inbound*min(inbound activities, 2) "
                       "+ seniority*level(0..4) + log10_employees*(log10(employees) - 2) + Normal(0, noise_sd); "
                       "the outcome (a won opportunity within 90 days) is drawn from p"),
        "intercept": B0, "coefficients": dict(COEF), "caps": {"meetings_held": MAX_MEETINGS, "inbound": MAX_INBOUND},
        "noise_sd": NOISE_SD, "channel_effects": {c: EFFECTS[c] for c in CHANNELS},
    }
