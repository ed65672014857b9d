"""Point-in-time features and labels at scale: time and peak memory of a full build and of the next
night with nothing new.

    python benchmarks/bench_features.py [--data /work/bench/leads_100000 /work/bench/leads_1000000] [--stretch-days 182]

Each data directory holds a generated dataset ingested into DuckDB (`warehouse.ingested.duckdb`,
as benchmarks/bench_identity.py leaves it; canonical_lead_id equals lead_id there unless the
identity graph ran). On a copy, in fresh processes:

- full: every weekly snapshot (Mondays over the generated period, about 26 at 180 days) and the
  watermark, for every open lead: features, labels, then the blocking leakage check (three sampled
  snapshots recomputed from events before their as_of);
- incremental: the next run with nothing new (only the watermark snapshot is recomputed);
- reference: DuckDB's own scan of core.events grouped by lead in the same run.

Target (issue 8): 1M leads over 26 weekly snapshots, no per-lead Python loop (there is none: every
row is computed in the engine).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from _common import EVENTS_SCAN_REFERENCE, run

PHASE = r"""
import json, resource, sys, time
from crm_platform.features import checks
from crm_platform.features.config import FeatureConfig
from crm_platform.features.run import build_features
from crm_platform.plan.loader import load_plan
from crm_platform.warehouse import DuckDBWarehouse
plan, config = load_plan(), FeatureConfig.load()
with DuckDBWarehouse(sys.argv[1]) as wh:
    t0 = time.perf_counter()
    run = build_features(wh, plan, config)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    check = checks.evaluate(wh, plan, config)[0] if sys.argv[2] == "full" else None
    check_s = time.perf_counter() - t1
    leads = wh.fetchall("select count(distinct lead_id) from features.lead_features")[0][0]
print(json.dumps({"wall_s": round(wall, 2), "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                  "mode": run.mode, "snapshots": len(run.snapshots), "computed": len(run.computed),
                  "feature_rows": run.feature_rows, "label_rows": run.label_rows, "leads": leads,
                  "stages_s": run.seconds, "leakage_check_s": round(check_s, 2),
                  "leakage_passed": None if check is None else check.passed}))
"""

STRETCH = r"""
import sys
from crm_platform.warehouse import DuckDBWarehouse
# Spread the generated period over `days` (occurred_at scaled from its start), so that a dataset
# generated over 120 days gives the weekly snapshots of a longer one; ingestion after all of it.
with DuckDBWarehouse(sys.argv[1]) as wh:
    lo, hi = wh.fetchall("select min(occurred_at), max(occurred_at) from core.events")[0]
    factor = float(sys.argv[2]) * 86400 / (hi - lo).total_seconds()
    wh.execute(f"update core.events set occurred_at = timestamp '{lo}' + to_microseconds("
               f"cast(date_diff('microsecond', timestamp '{lo}', occurred_at) * {factor} as bigint)), "
               "ingested_at = timestamp '2030-01-01'")
    wh.execute("update core.events set event_date = cast(occurred_at as date)")
    print(round(factor, 4))
"""





def measure(data: Path, stretch_days: int | None = None) -> dict:
    work = data / "warehouse.features.duckdb"
    shutil.copy2(data / "warehouse.ingested.duckdb", work)
    try:
        if stretch_days:
            run([sys.executable, "-c", STRETCH, str(work), str(stretch_days)])
        out = {"reference_s": float(run([sys.executable, "-c", EVENTS_SCAN_REFERENCE, str(work)]))}
        for phase in ("full", "incremental"):
            out[phase] = json.loads(run([sys.executable, "-c", PHASE, str(work), phase]))
            out[phase]["x_reference"] = round(out[phase]["wall_s"] / out["reference_s"], 1)
    finally:
        work.unlink(missing_ok=True)
        Path(str(work) + ".wal").unlink(missing_ok=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", default=[Path("/work/bench/leads_100000")])
    ap.add_argument("--stretch-days", type=int, default=None,
                    help="spread the events over this many days first (182 gives 26 weekly snapshots)")
    args = ap.parse_args()
    results = {}
    for data in args.data:
        print(data, flush=True)
        r = results[str(data)] = measure(data, args.stretch_days)
        for phase in ("full", "incremental"):
            p = r[phase]
            print(f"  {phase:<11} {p['wall_s']:>7.1f} s ({p['x_reference']} x reference {r['reference_s']} s)  "
                  f"peak {p['peak_gib']:.2f} GiB  leads {p['leads']}  snapshots {p['computed']}/{p['snapshots']}  "
                  f"rows {p['feature_rows']} features, {p['label_rows']} labels  stages {p['stages_s']}"
                  + (f"  leakage check {p['leakage_check_s']} s passed={p['leakage_passed']}" if phase == "full" else ""),
                  flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
