"""DuckDB: one file, one writing process (runs are serialized by a Dagster pool, see dagster.yaml).

The clear PII (the `pii` schema) is a schema of that file, or, with `pii_path` (CRM_PII_DUCKDB_PATH),
a file of its own, ATTACHed as the catalog `pii`: `"pii"."vault"` then names the table `vault` of
that file's default schema, so every SQL text reads the same in both layouts. The main file must
then have no `pii` schema (DuckDB refuses the name as ambiguous), and a transaction writes one
file only (DuckDB: "a single transaction can only write to a single attached database"), so
writers that change both (the ingest, retention) commit the pii side in a transaction of its own
(`pii_separate`).
"""
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
from crm_platform.warehouse.tables import PII_SCHEMA, TableDef

# How long a run waits for another process's lock on the DuckDB file before it gives up.
LOCK_TIMEOUT_S = 1800.0
MEMORY_LIMIT = "1GB"


def memory_limit() -> str:
    """DuckDB's memory budget (it spills to disk beyond it): 1GB, or CRM_DUCKDB_MEMORY_LIMIT for big
    runs, read when a connection opens."""
    return os.environ.get("CRM_DUCKDB_MEMORY_LIMIT") or MEMORY_LIMIT


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(self, path: Path | str, read_only: bool = False, lock_timeout_s: float = LOCK_TIMEOUT_S,
                 pii_path: Path | str | None = None):
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout_s = lock_timeout_s
        # The vault's own file; None (or the main file itself): the main file's `pii` schema.
        self.pii_path = Path(pii_path) if pii_path and Path(pii_path).absolute() != self.path.absolute() else None
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def pii_separate(self) -> bool:
        """The `pii` tables are in a file of their own: a transaction writes either them or the rest."""
        return self.pii_path is not None

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
                try:
                    self._attach_pii(con)
                except BaseException:
                    con.close()
                    raise
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

    def _attach_pii(self, con: duckdb.DuckDBPyConnection) -> None:
        """ATTACH the vault's own file as catalog `pii` (created 0600 if new). Refused when the main
        file still holds a `pii` schema with tables (a warehouse made in the one-file layout: move its
        pii tables first), or is itself named so that its catalog is `pii`."""
        if self.pii_path is None:
            return
        (main,) = con.execute("select current_database()").fetchone()
        if main == PII_SCHEMA:
            raise ValueError(f"the DuckDB warehouse file {self.path} is named like the vault's catalog ({PII_SCHEMA!r}): "
                             "rename it to use CRM_PII_DUCKDB_PATH")
        tables = con.execute("select count(*) from information_schema.tables where table_catalog = current_database() "
                             "and table_schema = ?", [PII_SCHEMA]).fetchone()[0]
        if tables:
            raise ValueError(
                f"CRM_PII_DUCKDB_PATH is set ({self.pii_path}) but the warehouse {self.path} still holds {tables} table(s) "
                f"in its {PII_SCHEMA!r} schema: copy them into the vault file (ATTACH it, CREATE TABLE pii_file.<t> AS "
                f"SELECT * FROM main_file.pii.<t>), drop the schema, then connect again; or unset CRM_PII_DUCKDB_PATH")
        if con.execute("select count(*) from information_schema.schemata where catalog_name = current_database() "
                       "and schema_name = ?", [PII_SCHEMA]).fetchone()[0]:
            if self.read_only:
                raise ValueError(f"the warehouse {self.path} has an (empty) {PII_SCHEMA!r} schema, which hides the "
                                 "vault file: open it writable once to drop it")
            con.execute(f'drop schema "{PII_SCHEMA}"')
        new = not self.pii_path.exists()
        if new and not self.read_only:
            self.pii_path.parent.mkdir(parents=True, exist_ok=True)
        path = str(self.pii_path).replace("'", "''")
        con.execute(f"attach '{path}' as \"{PII_SCHEMA}\"" + (" (read_only)" if self.read_only else ""))
        if new and self.pii_path.exists():
            os.chmod(self.pii_path, 0o600)  # the owner only, whatever the umask (README, "the PII vault")

    def _create_schema(self, schema: str) -> None:
        # The vault's own file needs none: its tables are in its default schema.
        if not (schema == PII_SCHEMA and self.pii_separate):
            self.con.execute(f'create schema if not exists "{schema}"')

    def _located(self, schema: str) -> tuple[str, str]:
        """(catalog, schema) of a contract schema in information_schema ('' for the main file's)."""
        if schema == PII_SCHEMA and self.pii_separate:
            return PII_SCHEMA, "main"
        return "", schema

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
            self._create_schema(schema)
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
        self._create_schema(table.schema)
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
        catalog, schema = self._located(table.schema)
        table.require_columns([c for (c,) in self.fetchall(
            "select column_name from information_schema.columns where table_catalog = coalesce(nullif(?, ''), "
            "current_database()) and table_schema = ? and table_name = ? order by ordinal_position",
            [catalog, schema, table.name])])
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
        catalog, schema = self._located(schema)
        if catalog:
            return bool(self.fetchall("select 1 from information_schema.tables where table_catalog = ? "
                                      "and table_schema = ? and table_name = ?", [catalog, schema, table]))
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
        if self.pii_separate:  # the vault file's tables are the `pii` schema's
            for table, column, kind in self.fetchall(
                    "select c.table_name, c.column_name, c.data_type from information_schema.columns c "
                    "join information_schema.tables t using (table_catalog, table_schema, table_name) "
                    "where t.table_type = 'BASE TABLE' and c.table_catalog = ? and c.table_schema = 'main' "
                    "order by c.table_name, c.ordinal_position", [PII_SCHEMA]):
                tables.setdefault((PII_SCHEMA, table), []).append((column, kind))
        return tables

    def ensure_table(self, table: TableDef) -> None:
        self._create_schema(table.schema)
        self.con.execute(table.duckdb_ddl())

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

