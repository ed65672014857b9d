"""Small builders for the ingest tests: canonical events, landed files, and one ingest pass."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import sqlglot
from sqlglot import exp

from crm_platform.ingest.run import ingest_landing
from crm_platform.plan.loader import load_plan
from crm_platform.settings import Settings
from crm_platform.warehouse import DuckDBWarehouse, Warehouse, open_warehouse

KEY = b"test-pii-key"


def event(event_id: str, event_type: str = "lead_created", occurred_at: str = "2026-03-10T15:12:30+01:00",
          lead_id: str | None = "lead_1", source: str = "webform", **attributes) -> dict:
    e = {"event_type": event_type, "schema_version": "2026-01-1", "event_id": event_id, "occurred_at": occurred_at,
         "source": source, "lead_id": lead_id, "producer_id": "test-1", "attributes": attributes}
    if lead_id is None:
        del e["lead_id"]
    return e


def touch(event_id: str, channel: str = "email", **kw) -> dict:
    return event(event_id, "campaign_touch", source="web", channel=channel, **kw)


def land(landing: Path, name: str, lines: list, *, gz: bool = False, newline: bytes = b"\n",
         prefix: bytes = b"") -> Path:
    """Write records (dicts as JSON, str/bytes as they are) as one landed file under events/."""
    path = landing / "events" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    body = prefix + b"".join((json.dumps(x).encode() if isinstance(x, dict)
                              else x.encode() if isinstance(x, str) else x) + newline for x in lines)
    if gz:
        body = gzip.compress(body, mtime=0)
    path.write_bytes(body)
    return path


def warehouse(read_only: bool = False) -> Warehouse:
    """The warehouse the environment names (the `engine` fixture sets it)."""
    settings = Settings.from_env()
    if settings.warehouse == "duckdb":
        return DuckDBWarehouse(settings.duckdb_path, read_only=read_only)
    return open_warehouse(settings)


def ingest(data_dir: Path):
    """One ingest pass over data_dir/landing with the test key; returns the file outcomes."""
    with warehouse() as wh:
        return ingest_landing(wh, data_dir / "landing", load_plan(), KEY)


def ingest_concurrently(data_dir: Path, runs: int = 3) -> list[int]:
    """`runs` ingest passes started at once in separate processes; how many files each took."""
    code = ("import sys, pathlib; from crm_platform_tests.test_ingest.helpers import ingest; "
            "print(len(ingest(pathlib.Path(sys.argv[1]))))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(runs)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    return [int(o[0]) for o in outs]


def engine_sql(wh: Warehouse, sql: str) -> str:
    """DuckDB SQL naming contract tables `schema.table`, with each name as the engine spells it."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in list(tree.find_all(exp.Table)):
        if table.db and not table.catalog:
            named = sqlglot.parse_one(wh.table_name(table.db, table.name), into=exp.Table, read="duckdb")
            named.set("alias", table.args.get("alias"))
            table.replace(named)
    return tree.sql(dialect="duckdb")


def query(data_dir: Path, sql: str, params=None) -> list[tuple]:
    with warehouse(read_only=True) as wh:
        return wh.fetchall(engine_sql(wh, sql), params)


def ledger(data_dir: Path) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in query(data_dir, "select source_file, records_read, events_accepted, events_duplicate, "
                                                  "records_quarantined, status from core.ingest_ledger")}


# Each ingest table with its sort key and the run-time columns a rerun may legitimately change.
SNAPSHOT_TABLES = {
    "core.events": ("event_id", "ingested_at"),
    "core.quarantine": ("source_file, source_line", "quarantined_at"),
    "core.ingest_ledger": ("sha256", "started_at, finished_at"),
    "core.landed_files": ("source_file, sha256", "seen_at"),
    "pii.vault": ("pii_hash", "first_seen_at"),
    "pii.quarantine_payloads": ("source_file, source_line", None),
}


def snapshot(data_dir: Path) -> dict[str, list]:
    """Every ingest table's content, for before/after comparisons."""
    out = {}
    for table, (order, run_time) in SNAPSHOT_TABLES.items():
        cols = f"* exclude ({run_time})" if run_time else "*"
        out[table] = query(data_dir, f"select {cols} from {table} order by {order}")
    return out
