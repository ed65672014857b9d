"""Export ingestion throughput: HubSpot contacts exports through `crm-platform materialize --select group:ingest`.

    python benchmarks/bench_exports.py [--small 100000] [--large 1000000]

Writes a HubSpot contacts export (the mapping's columns, UTF-8 with a BOM, realistic values: quoted
commas, accents, empty cells) of each size in its own landing, times the ingest of each in a fresh
process, and reports the marginal rate (rows/s between the two, which cancels start-up cost) against
DuckDB's own `read_csv` of the large file into a table in the same run. Target (issue 5): at least
0.4 x read_csv. Every row is a new contact, so each becomes a lead_created event.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEADER = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Company Name", "Street Address", "City",
          "Postal Code", "State/Region", "Country/Region", "Create Date", "Last Modified Date", "Lifecycle Stage",
          "Original Source", "Merged Record IDs", "Job Title", "Number of Employees"]
FIRST = ["Anna", "Björn", "Chloé", "David", "Emily", "Farid", "Grace", "Hiro", "Isabel", "Jonas"]
LAST = ["Smith", "Müller", "García", "O'Brien", "Rossi", "Kowalski", "Nguyen", "Schmidt", "Dubois", "Silva"]
COMPANY = ["Acme, Inc.", "Blue River Foods", "Fischer Beratung GmbH", "Nova Works", "Clear Media Corp"]
CITY = ["Berlin", "São Paulo", "New York", "München", "Lisboa", ""]
STAGE = ["Lead", "Marketing Qualified Lead", "Sales Qualified Lead", "Opportunity", "Customer"]
SOURCE = ["Organic Search", "Paid Search", "Referrals", "Direct Traffic", "Offline Sources"]


def write_export(path: Path, n: int, seed: int) -> None:
    rs = np.random.RandomState(seed)
    pick = {k: rs.randint(0, 10, n) for k in ("first", "last", "company", "city", "stage", "source")}
    minutes = np.sort(rs.randint(0, 120 * 1440, n))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for i in range(n):
            first, last = FIRST[pick["first"][i]], LAST[pick["last"][i]]
            m = int(minutes[i])
            created = f"2026-{3 + m // 43200:02d}-{1 + m // 1440 % 28:02d} {m // 60 % 24:02d}:{m % 60:02d}"
            email = f"{first.lower().encode('ascii', 'ignore').decode()}.{i}@example{i % 97}.com"
            w.writerow([3_000_000 + seed * 10_000_000 + i, first, last, email,
                        f"+1 415 555 {i % 10000:04d}" if i % 3 else "", COMPANY[pick["company"][i] % 5],
                        f"{i % 900 + 1} Main Street" if i % 2 else "", CITY[pick["city"][i] % 6], f"{10000 + i % 89999}",
                        "", "Germany", created, created, STAGE[pick["stage"][i] % 5], SOURCE[pick["source"][i] % 5],
                        "", "Engineer" if i % 4 else "", str(10 + i % 5000)])


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return time.perf_counter() - t0


def ingest(n: int, seed: int, root: Path) -> tuple[Path, float]:
    data = root / f"data{n}"
    f = data / "landing" / "batch" / "hubspot" / "contacts" / "contacts-2026-06-29.csv"
    write_export(f, n, seed)
    env = dict(os.environ, CRM_DATA_DIR=str(data), CRM_DUCKDB_PATH=str(data / "warehouse.duckdb"))
    return f, timed([str(Path(sys.executable).with_name("crm-platform")), "materialize", "--select", "group:ingest"], env)


def read_csv_seconds(f: Path) -> float:
    code = ("import duckdb,sys,time; c=duckdb.connect(); t=time.perf_counter(); "
            "c.execute(\"create table t as select * from read_csv(?)\", [sys.argv[1]]); print(time.perf_counter()-t)")
    return min(float(subprocess.check_output([sys.executable, "-c", code, str(f)]).decode()) for _ in range(2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_exports_"))
    try:
        _, s_small = ingest(args.small, 1, root)
        f, s_large = ingest(args.large, 2, root)
        raw = read_csv_seconds(f)
        mb = f.stat().st_size / 1e6
    finally:
        shutil.rmtree(root, ignore_errors=True)
    marginal = (args.large - args.small) / (s_large - s_small)
    ref = args.large / raw
    print(f"export of {args.small:,} rows: {s_small:.1f} s; {args.large:,} rows ({mb:,.0f} MB): {s_large:.1f} s")
    print(f"marginal ingest rate: {marginal:,.0f} rows/s; DuckDB read_csv of the large file: {ref:,.0f} rows/s ({raw:.2f} s)")
    print(f"ratio: {marginal / ref:.2f} x read_csv (target >= 0.4)")


if __name__ == "__main__":
    main()
