"""Which ORDER BY for core.events on ClickHouse: the queries the platform runs, timed on candidate sort keys.

    python benchmarks/bench_clickhouse_layout.py [--events 2000000]

Ingests N canonical events (bench_ingest's shape) into a real ClickHouse server started for the run,
copies core__events under each candidate ORDER BY (same columns, same PARTITION BY month), and times
the access paths of the layers: the touches of a date range (attribution), every event of a set of
leads (identity and features), a lookup of event ids (the ingest's duplicate check), and counts per
day and type (marts). Prints the best of three runs per query and layout, and rows read.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CANDIDATES = {
    "event_date, event_type, lead_id, occurred_at": "(event_date, event_type, lead_id, occurred_at)",
    "event_type, lead_id, occurred_at": "(event_type, lead_id, occurred_at)",
    "lead_id, occurred_at": "(lead_id, occurred_at)",
}
QUERIES = {
    "touches of two months (attribution)": "select count(), uniq(lead_id) from {t} where event_type = 'campaign_touch' "
                                            "and event_date between '2026-02-01' and '2026-03-31'",
    "every event of 2,000 leads (features)": "select count(), max(occurred_at) from {t} where lead_id in "
                                             "(select lead_id from {t} group by lead_id order by lead_id limit 2000)",
    "lookup of 100k event ids (ingest)": "select count() from {t} where event_id in "
                                         "(select event_id from {t} where cityHash64(event_id) % 20 = 0)",
    "events per day and type (marts)": "select event_date, event_type, count() from {t} group by all format Null",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("bench_ingest", Path(__file__).with_name("bench_ingest.py"))
    bench_ingest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_ingest)  # type: ignore[union-attr]

    from crm_platform.warehouse import ClickHouseWarehouse
    from crm_platform.warehouse.local_clickhouse import LocalClickHouse

    with tempfile.TemporaryDirectory() as tmp, LocalClickHouse(Path(tmp) / "clickhouse") as server:
        data = Path(tmp) / "data"
        f = data / "landing" / "events" / "events.jsonl"
        f.parent.mkdir(parents=True)
        bench_ingest.write_events(f, args.events, 3)
        env = dict(os.environ, CRM_DATA_DIR=str(data), **server.env("layout"))
        cli = str(Path(sys.executable).with_name("crm-platform"))
        subprocess.run([cli, "materialize", "--select", "group:ingest"], env=env, check=True, capture_output=True)
        with ClickHouseWarehouse(port=server.port, database="layout") as wh:
            ch = wh.client
            ddl = ch.query("select create_table_query from system.tables where database = 'layout' "
                           "and name = 'core__events'").result_rows[0][0]
            order_clause = ddl[ddl.index("ORDER BY"):ddl.index("SETTINGS")]
            tables = {}
            for i, (label, key) in enumerate(CANDIDATES.items()):
                name = f"layout.events_{i}"
                ch.command(ddl.replace("layout.core__events", name).replace(order_clause, f"ORDER BY {key} "))
                ch.command(f"insert into {name} select * from layout.core__events")
                ch.command(f"optimize table {name} final")
                tables[label] = name
            print(f"{args.events:,} events; best of 3 runs, seconds (rows read)")
            for q, sql in QUERIES.items():
                print(q)
                for label, name in tables.items():
                    best, rows = float("inf"), 0
                    for _ in range(3):
                        t0 = time.perf_counter()
                        summary = ch.query(sql.format(t=name).replace(" format Null", "")).summary
                        best = min(best, time.perf_counter() - t0)
                        rows = int(summary.get("read_rows", 0))
                    print(f"  {label:48s} {best:6.3f} s  ({rows:,} rows read)")


if __name__ == "__main__":
    main()
