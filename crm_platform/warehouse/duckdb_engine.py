"""DuckDB: one file, one writing process (runs are serialized by a Dagster pool, see dagster.yaml)."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from crm_platform.warehouse.base import Warehouse
from crm_platform.warehouse.errors import WarehouseUnavailable
from crm_platform.warehouse.tables import TableDef

# How long a run waits for another process's lock on the DuckDB file before it gives up.
LOCK_TIMEOUT_S = 1800.0
MEMORY_LIMIT = "1GB"


def memory_limit() -> str:
    """DuckDB's memory budget (it spills to disk beyond it): 1GB, or CRM_DUCKDB_MEMORY_LIMIT for big
    runs, read when a connection opens."""
    return os.environ.get("CRM_DUCKDB_MEMORY_LIMIT") or MEMORY_LIMIT


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(self, path: Path | str, read_only: bool = False, lock_timeout_s: float = LOCK_TIMEOUT_S):
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout_s = lock_timeout_s
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        # Connect lazily: a connection holds the file lock, so it is opened only inside a run.
        if self._con is None:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = self._connect()
        return self._con

    def _config(self) -> dict[str, str]:
        # A bounded memory budget: large stagings (a whole landed file) spill next to the warehouse
        # instead of growing the process without limit.
        return {"memory_limit": memory_limit(), "temp_directory": str(self.path.parent / (self.path.name + ".tmp"))}

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Wait for another process's lock rather than fail: a sensor run, the schedule and a manual
        `crm-platform materialize` may start together; the pool serializes Dagster's runs, this
        serializes everything else."""
        deadline = time.monotonic() + self.lock_timeout_s
        pause = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only, config=self._config())
                con.execute("set enable_progress_bar = false")  # runs log; a bar on stdout is noise
                return con
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise WarehouseUnavailable(
                        f"cannot open the DuckDB warehouse {self.path}: {e}. Another process held it for "
                        f"{self.lock_timeout_s:.0f} s (a notebook or a run outside the `warehouse_duckdb` pool): "
                        "close it and retry.") from e
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def table_name(self, schema: str, table: str) -> str:
        return f'"{schema}"."{table}"'

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None,
                    tables: Mapping[str, pa.Table] | None = None) -> pa.Table:
        for name, table in (tables or {}).items():
            self.con.register(name, table)
        try:
            # A relation converts to Arrow without the DB-API cursor's extra copy of the rows.
            return self.con.sql(sql, params=params or None).to_arrow_table()
        finally:
            for name in tables or {}:
                self.con.unregister(name)

    def insert_arrow(self, schema: str, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        self.con.register("_inserted", data)
        try:
            cols = ", ".join(f'"{c}"' for c in data.column_names)
            self.con.execute(f"insert into {self.table_name(schema, table)} ({cols}) select {cols} from _inserted")
        finally:
            self.con.unregister("_inserted")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("begin transaction")
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        # CREATE OR REPLACE inside one transaction: readers see the old table or the new one, never half.
        with self.transaction():
            self.con.execute(f'create schema if not exists "{schema}"')
            self.con.register("_replacement", data)
            try:
                self.con.execute(f"create or replace table {self.table_name(schema, table)} as select * from _replacement")
            finally:
                self.con.unregister("_replacement")
        return data.num_rows

    def rebuild_table(self, table: TableDef, selects: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        # Each query fills the build table in a transaction of its own (one transaction for them all
        # held a 17M-row build in memory and ran out of it); readers see the old table until the swap,
        # which is one transaction. A build left by a crash is dropped by the next rebuild.
        build = replace(table, name=table.name + "__build")
        target, built = self.table_name(table.schema, table.name), self.table_name(build.schema, build.name)
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        self.con.execute(f'create schema if not exists "{table.schema}"')
        self.con.execute(f"drop table if exists {built}")
        self.con.execute(build.duckdb_ddl())
        try:
            for sql, params in selects:
                with self.transaction():
                    self.con.execute(f"insert into {built} ({cols}) {sql}", dict(params) or None)
        except BaseException:
            self.con.execute(f"drop table if exists {built}")
            raise
        with self.transaction():
            self.con.execute(f"drop table if exists {target}")
            self.con.execute(f'alter table {built} rename to "{table.name}"')
        return self.row_count(table.schema, table.name)

    def replace_range(self, table: TableDef, start: date, end: date,
                      selects: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        target, day, cols = self.table_name(table.schema, table.name), f'"{table.partition_by}"', \
            ", ".join(f'"{c}"' for c in table.column_names)
        self.ensure_table(table)
        table.require_columns([c for (c,) in self.fetchall(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [table.schema, table.name])])
        written = 0
        with self.transaction():
            self.con.execute(f"delete from {target} where {day} >= $start and {day} < $end", {"start": start, "end": end})
            for sql, params in selects:
                self.con.execute(f"insert into {target} ({cols}) select {cols} from ({sql}) as rows_in "
                                 f"where {day} >= $range_start and {day} < $range_end",
                                 {**params, "range_start": start, "range_end": end})
                written += self.con.fetchone()[0]
        return written

    def release_memory(self) -> None:
        # DuckDB keeps table pages cached up to its memory limit; a moment at a tiny limit evicts them.
        self.con.execute("set memory_limit = '32MB'")
        self.con.execute(f"set memory_limit = '{memory_limit()}'")

    def update_column(self, schema: str, table: str, column: str, key: str, mapping: pa.Table) -> None:
        with self.transaction():
            self.con.register("_mapping", mapping)
            try:
                self.con.execute(f'update {self.table_name(schema, table)} as t set "{column}" = m.value '
                                 f'from _mapping as m where t."{key}" = m.key and t."{column}" is distinct from m.value')
            finally:
                self.con.unregister("_mapping")

    def delete_rows(self, schema: str, table: str, where_sql: str,
                    params: Sequence[Any] | Mapping[str, Any] | None = None) -> int:
        (deleted,) = self.con.execute(f"delete from {self.table_name(schema, table)} where {where_sql}",
                                      params or []).fetchone()
        return int(deleted)

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.fetchall(
            "select 1 from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]))

    def list_tables(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, kind in self.fetchall(
                "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
                "join information_schema.tables t using (table_catalog, table_schema, table_name) "
                "where t.table_type = 'BASE TABLE' and c.table_catalog = current_database() "
                "order by c.table_schema, c.table_name, c.ordinal_position"):
            tables.setdefault((schema, table), []).append((column, kind))
        return tables

    def ensure_table(self, table: TableDef) -> None:
        self.con.execute(f'create schema if not exists "{table.schema}"')
        self.con.execute(table.duckdb_ddl())

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

