"""What the benchmark scripts share: a step in a fresh process, and the yardstick they report
ratios against (DuckDB's own scan of core.events grouped by lead, in the same run)."""
from __future__ import annotations

import subprocess

EVENTS_SCAN_REFERENCE = r"""
import sys, time
from crm_platform.warehouse import DuckDBWarehouse
with DuckDBWarehouse(sys.argv[1], read_only=True) as wh:
    t0 = time.perf_counter()
    wh.fetchall("select count(*) from (select lead_id, count(*), min(occurred_at) from core.events group by lead_id)")
    print(round(time.perf_counter() - t0, 3))
"""


def run(args: list[str], env=None) -> str:
    """Run a step in a fresh process; its last line of output ('' if none), or exit with its error."""
    p = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{p.stderr[-3000:]}")
    lines = p.stdout.strip().splitlines()
    return lines[-1] if lines else ""
