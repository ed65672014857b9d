"""The ClickHouse engine against a real server: names, DDL, swaps, inserts, the writer lock, and SQL
written in DuckDB's dialect running transpiled; and the resource that configures it from EnvVars."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import date, datetime

import dagster as dg
import pyarrow as pa
import pytest

from crm_platform.defs.resources import ENV_FIELDS, warehouse_resource
from crm_platform.warehouse import ClickHouseWarehouse
from crm_platform.warehouse.dialect import UntranslatableSQL, to_clickhouse
from crm_platform.warehouse.tables import EVENTS, INGEST_TABLES


@pytest.fixture
def wh(clickhouse, request):
    database = "w_" + request.node.name[:40].replace("[", "_").replace("]", "_").replace("-", "_")
    with ClickHouseWarehouse(port=clickhouse.port, database=database) as w:
        yield w
        w.client.command(f'drop database if exists "{database}"')


def test_tables_are_named_schema__table_inside_the_database(wh):
    assert wh.table_name("core", "events") == f'"{wh.database}"."core__events"'
    for table in INGEST_TABLES:
        wh.ensure_table(table)
        wh.ensure_table(table)  # idempotent
        assert wh.table_exists(table.schema, table.name)
    assert not wh.table_exists("core", "nothing")
    ddl = wh.fetchall(f"select create_table_query from system.tables where database = '{wh.database}' and name = 'core__events'")[0][0]
    assert "PARTITION BY toYYYYMM(event_date)" in ddl and "ORDER BY (event_type, lead_id, occurred_at)" in ddl
    assert "LowCardinality(Nullable(String))" in ddl and "CODEC(ZSTD(1))" in ddl


def test_replace_table_swaps_whole_content(wh):
    assert wh.replace_table("core", "t", pa.table({"a": [1, 2, 3], "tags": [["x"], [], ["y", "z"]]})) == 3
    assert wh.replace_table("core", "t", pa.table({"a": [7], "b": ["x"]})) == 1
    assert wh.fetchall(f"select a, b from {wh.table_name('core', 't')}") == [(7, "x")]
    assert not wh.table_exists("core", "t__build")


def test_inserts_and_reads_keep_values_and_a_token_makes_a_retry_a_no_op(wh):
    wh.ensure_table(EVENTS)
    row = pa.table({"event_id": ["e1"], "occurred_at": [datetime(2026, 1, 2, 3, 4, 5, 678901)],
                    "event_date": [date(2026, 1, 2)], "attributes": ['{"a":1}'], "occurred_at_offset_minutes": [-300]})
    wh.insert_arrow("core", "events", row, dedup_token="t1")
    wh.insert_arrow("core", "events", row, dedup_token="t1")
    assert wh.fetchall(f"select event_id, occurred_at, event_date, attributes->>'a', occurred_at_offset_minutes "
                       f"from {wh.table_name('core', 'events')}") == [
        ("e1", datetime(2026, 1, 2, 3, 4, 5, 678901), date(2026, 1, 2), "1", -300)]
    ids = pa.table({"event_id": ["e1", "e2"]})
    got = wh.fetch_arrow(f"select event_id from {wh.table_name('core', 'events')} where event_id in "
                         "(select event_id from wanted)", tables={"wanted": ids})
    assert got.column(0).to_pylist() == ["e1"]


def test_there_is_no_transaction_to_pretend(wh):
    with pytest.raises(NotImplementedError, match="build, then swap"):
        with wh.transaction():
            pass


def test_the_writer_lock_admits_one_holder_and_breaks_a_dead_ones(wh, clickhouse):
    order = []

    def hold(name: str) -> None:
        with ClickHouseWarehouse(port=clickhouse.port, database=wh.database) as other, other.exclusive("ingest"):
            order.append(f"{name} in")
            time.sleep(0.5)
            order.append(f"{name} out")

    threads = [threading.Thread(target=hold, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    # A holder killed without releasing: the next writer notices it is gone and takes over.
    code = (f"import os, signal; from crm_platform.warehouse import ClickHouseWarehouse\n"
            f"w = ClickHouseWarehouse(port={clickhouse.port}, database={wh.database!r})\n"
            "held = w.exclusive('ingest'); held.__enter__(); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    assert wh.table_exists("lock", "ingest")
    with wh.exclusive("ingest"):
        pass
    assert not wh.table_exists("lock", "ingest")


def test_duckdb_sql_runs_transpiled_with_its_parameters(wh):
    wh.replace_table("core", "t", pa.table({"k": ["a", "a", "b"], "v": [1, 2, 3], "tags": [["x", "y"], ["z"], []]}))
    t = wh.table_name("core", "t")
    assert wh.fetchall(f"select k, count(*) filter (where v > ?), any_value(v) is not null from {t} group by all order by k",
                       [1]) == [("a", 1, True), ("b", 1, True)]
    assert wh.fetchall(f"select string_agg(distinct k, ', ' order by k) from {t}") == [("a, b",)]
    # Ordered by another key (ties broken by the value, as the tuples sort).
    assert wh.fetchall(f"select string_agg(k, '>' order by v desc) from {t}") == [("b>a>a",)]
    assert wh.fetchall(f"select k, string_agg(cast(v as varchar), ',' order by v) from {t} group by k order by k") == [
        ("a", "1,2"), ("b", "3")]
    assert wh.fetchall(f"select tag, count(*) from (select unnest(tags) tag from {t}) group by all order by tag") == [
        ("x", 1), ("y", 1), ("z", 1)]
    # A missing JSON key is NULL, as in DuckDB (ClickHouse's JSONExtractString alone gives '').
    assert wh.fetchall("""select '{"a": "x", "n": null}' ->> 'a', '{"a": "x"}' ->> 'b' is null, '{"n": null}' ->> 'n' is null""") == [
        ("x", True, True)]
    assert wh.fetchall("select strftime($ts, '%Y-%m-%d %H:%M'), $names[2]",
                       {"ts": datetime(2026, 3, 1, 9, 5), "names": ["p", "q"]}) == [("2026-03-01 09:05", "q")]


def test_the_dialect_binds_literals_and_refuses_what_it_cannot_carry():
    assert to_clickhouse("select ? + 1, ?", [2, "it's"]) == "SELECT 2 + 1, 'it''s'"
    assert "CAST('2026-01-02' AS Date32)" in to_clickhouse("select $d", {"d": date(2026, 1, 2)})
    with pytest.raises(ValueError, match=r"no value for parameter \$x"):
        to_clickhouse("select $x", {})
    with pytest.raises(UntranslatableSQL, match="mixed directions"):
        to_clickhouse("select string_agg(a, ',' order by b, c desc) from t")


def test_the_resource_takes_every_variable_as_an_env_var_and_shows_no_secret(monkeypatch):
    env = {"CRM_WAREHOUSE": "clickhouse", "CLICKHOUSE_PASSWORD": "pw-s3cret", "CRM_PII_KEY": "key-s3cret"}
    resource = warehouse_resource(env)
    for field, var in ENV_FIELDS.items():
        value = getattr(resource, field)
        assert (value == var) if var in env else value is None  # an EnvVar is its variable's name
    assert "s3cret" not in repr(resource)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.build_resources({"warehouse": resource}) as built:
        s = built.warehouse.settings()
    assert (s.warehouse, s.clickhouse_password, s.pii_key()) == ("clickhouse", "pw-s3cret", b"key-s3cret")
    assert "s3cret" not in repr(s)
