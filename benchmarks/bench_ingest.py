"""Ingest throughput and memory on canonical event files.

    python benchmarks/bench_ingest.py [--small 200000] [--large 2000000] [--engine duckdb|clickhouse|both]

Lands a 200k-event and a 2M-event file of canonical events (in separate data directories), times
`crm-platform materialize --select group:ingest` on each in a fresh process, and reports the marginal
rate (events/s between the two, which cancels start-up cost) against DuckDB's own `read_json` of the
large file into a table, measured in the same run, plus the peak RSS of the large ingest (the whole
process tree, from wait4's rusage). Targets (issue 3): at least 0.5 x read_json, under 1.5 GiB.

With --engine clickhouse (or both), the same two landings are ingested into a real ClickHouse server
started for the run (crm_platform.warehouse.local_clickhouse, from the test extra's chdb-core), and
its marginal rate is compared with DuckDB's on the same files.

A second yardstick, the floor: the same file read by DuckDB itself (read_json, every field as JSON
text) straight into a warehouse file's core.events, with nothing checked, hashed or deduplicated.
No ingest can be faster than that; it shows how much of the target the storage alone takes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TYPES = ["campaign_touch"] * 6 + ["activity_logged"] * 2 + ["lead_updated", "lead_created"]
CHANNELS = ["paid_search", "organic_search", "email", "paid_social", "display", "referral"]


def write_events(path: Path, n: int, seed: int) -> None:
    """Events shaped like the acceptance check's: mostly touches and activities, a context per event."""
    rs = np.random.RandomState(seed)
    ts = np.sort(rs.randint(0, 180 * 86400, size=n)) + 1767225600
    typ, lead, ch = rs.randint(0, len(TYPES), n), rs.randint(0, 200_000, n), rs.randint(0, len(CHANNELS), n)
    context = {"ip": "203.0.113.12", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "referrer": "https://www.google.com/"}
    with path.open("w") as fh:
        for i in range(n):
            t = TYPES[typ[i]]
            if t == "campaign_touch":
                a = {"channel": CHANNELS[ch[i]], "campaign_id": f"cmp_{ch[i]}_{i % 17}", "utm_source": "google", "click_id": f"gclid_{i}"}
            elif t == "activity_logged":
                a = {"activity_type": "call", "direction": "outbound", "outcome": "connected"}
            elif t == "lead_updated":
                a = {"company": f"Company {lead[i] % 5000}"}
            else:
                a = {"email": f"user{lead[i]}@perf.example.com", "company": f"Company {lead[i] % 5000}", "lead_source": CHANNELS[ch[i]]}
            fh.write(json.dumps({"event_type": t, "schema_version": "2026-01-1", "event_id": f"evt_p{seed}_{i:08d}",
                                 "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts[i]))), "source": "crm",
                                 "lead_id": f"lead_p{lead[i]:06d}", "attributes": a, "context": context}) + "\n")


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of a command and its children."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024 / 1024


def ingest(n: int, seed: int, root: Path, engine_env: dict | None = None) -> tuple[Path, float, float]:
    data = root / f"data{n}-{(engine_env or {}).get('CLICKHOUSE_DATABASE', 'duckdb')}"
    f = data / "landing" / "events" / f"events-{n}.jsonl"
    f.parent.mkdir(parents=True)
    write_events(f, n, seed)
    env = dict(os.environ, CRM_DATA_DIR=str(data), CRM_DUCKDB_PATH=str(data / "warehouse.duckdb"), **(engine_env or {}))
    cli = str(Path(sys.executable).with_name("crm-platform"))
    seconds, rss = timed([cli, "materialize", "--select", "group:ingest"], env)
    return f, seconds, rss


def read_json_seconds(f: Path) -> float:
    code = ("import duckdb,sys,time; c=duckdb.connect(); c.execute('set enable_progress_bar = false'); "
            "t=time.perf_counter(); "
            "c.execute(\"create table t as select * from read_json(?, format='newline_delimited')\", [sys.argv[1]]); "
            "print(time.perf_counter()-t)")
    return min(float(subprocess.check_output([sys.executable, "-c", code, str(f)]).decode()) for _ in range(2))


_FLOOR = """
import duckdb, sys, time
from crm_platform.warehouse.tables import EVENTS
c = duckdb.connect(sys.argv[2])
c.execute('set enable_progress_bar = false')
c.execute('create schema core')
c.execute(EVENTS.duckdb_ddl())
types = dict.fromkeys(("event_type", "schema_version", "event_id", "occurred_at", "source", "lead_id", "user_id",
                       "producer_id"), "VARCHAR") | {"attributes": "JSON", "context": "JSON"}
cols = ", ".join(f"'{k}': '{t}'" for k, t in types.items())
t = time.perf_counter()
named = ", ".join(EVENTS.column_names[:18])  # the columns filled below (data_residency stays NULL)
c.execute(f\"\"\"insert into core.events ({named}) select event_id, event_type, schema_version, schema_version,
    cast(left(occurred_at, 19) as timestamp), 0, now()::timestamp, source, producer_id, lead_id, lead_id, user_id,
    attributes, context, cast(left(occurred_at, 10) as date), 'events/x.jsonl', ordinality, 'plan'
    from read_json(?, format='newline_delimited', columns={{{cols}}}) with ordinality\"\"\", [sys.argv[1]])
print(time.perf_counter() - t)
"""


def floor_seconds(f: Path, root: Path) -> float:
    return float(subprocess.check_output([sys.executable, "-c", _FLOOR, str(f), str(root / "floor.duckdb")]).decode())


def marginal(args, root: Path, engine_env: dict | None = None) -> tuple[float, float, float, float, Path]:
    """(small seconds, large seconds, events/s between them, peak GiB of the large run, the large file)."""
    _, s_small, _ = ingest(args.small, 1, root, engine_env)
    f, s_large, rss = ingest(args.large, 2, root, engine_env)
    return s_small, s_large, (args.large - args.small) / (s_large - s_small), rss, f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=200_000)
    ap.add_argument("--large", type=int, default=2_000_000)
    ap.add_argument("--engine", choices=["duckdb", "clickhouse", "both"], default="duckdb")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    results = {}
    try:
        if args.engine in ("duckdb", "both"):
            results["duckdb"] = marginal(args, root)
        if args.engine in ("clickhouse", "both"):
            from crm_platform.warehouse.local_clickhouse import LocalClickHouse

            with LocalClickHouse(root / "clickhouse") as server:
                results["clickhouse"] = marginal(args, root, server.env("bench"))
        f = next(iter(results.values()))[4]
        raw = read_json_seconds(f)
        floor = floor_seconds(f, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    raw_rate = args.large / raw
    print(f"reference, DuckDB read_json of the large file: {raw_rate:,.0f} events/s ({raw:.2f} s)")
    for engine, (s_small, s_large, rate, rss, _) in results.items():
        print(f"{engine}: ingest {args.small:,} events: {s_small:.1f} s; {args.large:,} events: {s_large:.1f} s; "
              f"marginal {rate:,.0f} events/s = {rate / raw_rate:.2f} x read_json (target >= 0.5); "
              f"peak RSS {rss:.2f} GiB (target < 1.5)")
    if len(results) == 2:
        print(f"clickhouse / duckdb marginal rate: {results['clickhouse'][2] / results['duckdb'][2]:.2f}")
    print(f"floor, read_json straight into core.events unchecked: {args.large / floor:,.0f} events/s "
          f"= {raw / floor:.2f} x read_json")


if __name__ == "__main__":
    main()
