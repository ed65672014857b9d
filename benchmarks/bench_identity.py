"""Identity graph at scale: time and peak memory of a full run and of an incremental night.

    python benchmarks/bench_identity.py [--sizes 100000 1000000] [--root /tmp/crm-bench-identity]

For each size, generates the dataset (`crm-platform generate --leads N`, seed 1) and ingests it into
DuckDB once (kept under --root and reused), then measures in fresh processes on a copy of the
ingested warehouse:

- full: the first identity run (normalization, rules, Splink training and scoring, clusters, every
  decision logged as an event and ingested, canonical ids filled);
- incremental: the next night with nothing new (fingerprints compared, no pair rescored);
- reference: DuckDB's own scan of core.events grouped by lead_id in the same run, the yardstick the
  ratios are given against (this machine is shared and noisy).

Reports wall time, peak RSS, the seconds per stage, pairwise precision/recall/F1 against the truth,
and the growth exponent of time and memory between the two sizes (1.0 is linear).
Targets (issue 6): 1M leads under 4 GiB peak, growth close to linear.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from _common import EVENTS_SCAN_REFERENCE, run

PHASE = r"""
import json, resource, sys, time
from datetime import datetime, timezone, timedelta
from pathlib import Path
import pandas as pd
from crm_platform.identity.evaluation import pairwise_scores
from crm_platform.identity.run import run_identity
from crm_platform.plan.loader import load_plan
from crm_platform.warehouse import DuckDBWarehouse
data, phase = Path(sys.argv[1]), sys.argv[2]
when = datetime(2026, 7, 1, 2, tzinfo=timezone.utc) + (timedelta(days=1) if phase == "incremental" else timedelta())
t0 = time.perf_counter()
with DuckDBWarehouse(data / "warehouse.duckdb") as wh:
    run = run_identity(wh, data / "landing", load_plan(), b"bench-key", now=when)
wall = time.perf_counter() - t0
res = run.resolution
scores = pairwise_scores(res.identity_map, pd.read_csv(data / "truth" / "identity.csv", dtype=str)).as_dict()
print(json.dumps({"wall_s": round(wall, 2), "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                  "mode": res.mode, "records": res.summary["lead_records"], "compared": res.compared,
                  "decisions": len(res.decisions), "stages_s": res.summary["seconds"], "quality": scores}))
"""


INGEST = r"""
import sys
from pathlib import Path
from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.loader import load_plan
from crm_platform.warehouse import DuckDBWarehouse
data = Path(sys.argv[1])
with DuckDBWarehouse(data / "warehouse.ingested.duckdb") as wh:
    ingest_landing(wh, data / "landing", load_plan(), b"bench-key")
"""




def prepare(root: Path, leads: int) -> Path:
    data = root / f"leads_{leads}"
    if not (data / "truth" / "identity.csv").exists():
        t0 = time.perf_counter()
        run(["crm-platform", "generate", "--data-dir", str(data), "--leads", str(leads), "--seed", "1"])
        print(f"  generated {leads} leads in {time.perf_counter() - t0:.0f} s", flush=True)
    if not (data / "warehouse.ingested.duckdb").exists():
        shutil.rmtree(data / "landing" / "events" / "identity", ignore_errors=True)
        t0 = time.perf_counter()
        run([sys.executable, "-c", INGEST, str(data)])
        print(f"  ingested in {time.perf_counter() - t0:.0f} s", flush=True)
    return data


def measure(data: Path) -> dict:
    shutil.rmtree(data / "landing" / "events" / "identity", ignore_errors=True)
    for suffix in ("", ".wal"):
        (data / f"warehouse.duckdb{suffix}").unlink(missing_ok=True)
    shutil.copy2(data / "warehouse.ingested.duckdb", data / "warehouse.duckdb")
    out = {"reference_s": float(run([sys.executable, "-c", EVENTS_SCAN_REFERENCE, str(data / "warehouse.duckdb")]))}
    for phase in ("full", "incremental"):
        out[phase] = json.loads(run([sys.executable, "-c", PHASE, str(data), phase]))
        out[phase]["x_reference"] = round(out[phase]["wall_s"] / out["reference_s"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "crm-bench-identity")
    args = ap.parse_args()
    results = {}
    for n in args.sizes:
        print(f"{n} leads", flush=True)
        results[n] = measure(prepare(args.root, n))
        r = results[n]
        for phase in ("full", "incremental"):
            p = r[phase]
            print(f"  {phase:<11} {p['wall_s']:>8.1f} s  ({p['x_reference']} x reference {r['reference_s']} s)  "
                  f"peak {p['peak_gib']:.2f} GiB  records {p['records']}  compared {p['compared']}  "
                  f"decisions {p['decisions']}  F1 {p['quality']['f1']}  P {p['quality']['precision']}  "
                  f"R {p['quality']['recall']}", flush=True)
            print(f"              stages {p['stages_s']}", flush=True)
    if len(args.sizes) >= 2:
        small, large = sorted(args.sizes)[0], sorted(args.sizes)[-1]
        a, b = results[small]["full"], results[large]["full"]
        scale = math.log(large / small)
        print(f"growth {small} -> {large}: time exponent {math.log(b['wall_s'] / a['wall_s']) / scale:.2f}, "
              f"memory exponent {math.log(b['peak_gib'] / a['peak_gib']) / scale:.2f} (1.0 = linear)")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
