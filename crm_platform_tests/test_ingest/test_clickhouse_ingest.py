"""Ingest on ClickHouse, where there are no transactions: exactly once when the same content lands
twice and runs overlap, recovery after a run dies while publishing, and the same tables as DuckDB
from the same files (parity)."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from crm_platform.synth import generate_dataset

from .helpers import SNAPSHOT_TABLES, event, ingest, ingest_concurrently, land, ledger, query, snapshot


def _only_clickhouse(fn):
    return pytest.mark.parametrize("engine", ["clickhouse"], indirect=True)(fn)


@_only_clickhouse
def test_the_same_file_twice_and_concurrently_lands_once(engine, data_dir):
    landing = data_dir / "landing"
    lines = [event(f"c{i}") for i in range(2000)] + ["{bad"]
    land(landing, "a.jsonl", lines)
    land(landing, "b.jsonl", lines)  # the same content under another name
    assert sorted(ingest_concurrently(data_dir)) == [0, 0, 2]  # one run took both files, the others found nothing
    assert query(data_dir, "select count(*), count(distinct event_id) from core.events") == [(2000, 2000)]
    assert ledger(data_dir) == {"events/a.jsonl": (2001, 2000, 0, 1, "complete")}
    assert query(data_dir, "select source_file, outcome from core.landed_files order by 1") == [
        ("events/a.jsonl", "ingested"), ("events/b.jsonl", "duplicate_content")]
    assert query(data_dir, "select count(*) from core.quarantine") == [(1,)]


@_only_clickhouse
def test_a_repeated_insert_with_its_token_adds_nothing(engine, data_dir):
    import pyarrow as pa

    from .helpers import warehouse

    land(data_dir / "landing", "a.jsonl", [event("r1")])
    ingest(data_dir)
    with warehouse() as wh:
        rows = wh.fetch_arrow(f"select * from {wh.table_name('core', 'landed_files')}")
        for _ in range(2):
            wh.insert_arrow("core", "landed_files", pa.Table.from_batches(rows.to_batches()), dedup_token="retry-1")
    assert query(data_dir, "select count(*) from core.landed_files") == [(2,)]  # the original and one retry


_DIES_WHILE_PUBLISHING = """
import os, signal, sys
from crm_platform.warehouse import ClickHouseWarehouse
real = ClickHouseWarehouse.insert_arrow
def insert_then_die(self, schema, table, *a, **k):
    real(self, schema, table, *a, **k)
    if table == "quarantine":  # events are in; the ledger rows never come
        os.kill(os.getpid(), signal.SIGKILL)
ClickHouseWarehouse.insert_arrow = insert_then_die
from crm_platform_tests.test_ingest.helpers import ingest
ingest(__import__("pathlib").Path(sys.argv[1]))
"""


@_only_clickhouse
def test_a_run_that_dies_while_publishing_is_undone_by_the_next_one(engine, data_dir):
    landing = data_dir / "landing"
    land(landing, "a.jsonl", [event("k1"), event("k2")])
    ingest(data_dir)
    before = snapshot(data_dir)
    land(landing, "b.jsonl", [event("k3"), "{bad", event("k1")])
    p = subprocess.run([sys.executable, "-c", _DIES_WHILE_PUBLISHING, str(data_dir)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr[-800:]
    # Half a group is in: k3 and the quarantined line, no ledger row (and the dead run's lock).
    assert query(data_dir, "select count(*) from core.events where event_id = 'k3'") == [(1,)]
    assert "events/b.jsonl" not in ledger(data_dir)
    (o,) = ingest(data_dir)
    assert (o.records_read, o.events_accepted, o.events_duplicate, o.records_quarantined) == (3, 1, 1, 1)
    after = snapshot(data_dir)
    assert query(data_dir, "select count(*), count(distinct event_id) from core.events") == [(3, 3)]
    assert query(data_dir, "select count(*) from core.quarantine") == [(1,)]
    assert query(data_dir, "select count(*) from pii.quarantine_payloads") == [(1,)]
    assert len(after["core.ingest_ledger"]) == len(before["core.ingest_ledger"]) + 1


def _comparable(data_dir: Path) -> dict[str, list]:
    """Every ingest table, run-time columns aside, as sorted plain values."""
    out = {}
    for table, (order, run_time) in SNAPSHOT_TABLES.items():
        cols = f"* exclude ({run_time})" if run_time else "*"
        if table == "pii.quarantine_payloads":
            cols = "source_file, source_line, sha256, lower(hex(raw_record))"
        rows = query(data_dir, f"select {cols} from {table} order by {order}")
        out[table] = sorted(tuple(str(v) if isinstance(v, (list, tuple)) else v for v in r) for r in rows)
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parity")
    generate_dataset(root, leads=200, days=45, seed=11)
    return root


def test_both_engines_give_the_same_tables_from_the_same_files(generated, data_dir, clickhouse, monkeypatch):
    shutil.copytree(generated / "landing" / "events", data_dir / "landing" / "events")
    ingest(data_dir)
    on_duckdb = _comparable(data_dir)
    for name, value in clickhouse.env("t_parity_ingest").items():
        monkeypatch.setenv(name, value)
    try:
        ingest(data_dir)
        on_clickhouse = _comparable(data_dir)
    finally:
        from crm_platform.warehouse import ClickHouseWarehouse

        with ClickHouseWarehouse(port=clickhouse.port, database="t_parity_ingest") as wh:
            wh.client.command('drop database if exists "t_parity_ingest"')
    assert sum(len(rows) for rows in on_duckdb.values()) > 5000
    for table in on_duckdb:
        assert on_clickhouse[table] == on_duckdb[table], table
