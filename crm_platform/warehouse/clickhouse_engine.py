"""ClickHouse over HTTP(S) with clickhouse-connect: the warehouse for volumes one machine cannot hold.

SQL arrives in DuckDB's dialect and runs transpiled (`dialect.to_clickhouse`). Tables live in
`CLICKHOUSE_DATABASE` as `<schema>__<table>` MergeTrees (DDL in `tables.py`), but for the clear PII:
the `pii` schema's tables are in a database of their own, `CLICKHOUSE_PII_DATABASE` (default
`<CLICKHOUSE_DATABASE>_pii`), under their own names (`crm_pii.vault`), so that grants can give
analysts the one and not the other. ClickHouse has no
multi-statement transactions: whole-table writes are build-then-swap (`EXCHANGE TABLES`, atomic in
an Atomic database), and writers that must not interleave take `exclusive(name)`, a lock made of a
table that only one creator can create.
"""
from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

import pyarrow as pa

from crm_platform.warehouse.base import Warehouse
from crm_platform.warehouse.dialect import to_clickhouse
from crm_platform.warehouse.errors import WarehouseUnavailable
from crm_platform.warehouse.tables import PII_SCHEMA, TableDef

LOCK_TIMEOUT_S = 1800.0
# What DuckDB-dialect SQL means, on ClickHouse: UTC, NULL (not a default value) for the missing side
# of an outer join, and strftime's %M as minutes (SQLGlot keeps the format string as written).
SESSION_SETTINGS = {"session_timezone": "UTC", "join_use_nulls": 1, "formatdatetime_parsedatetime_m_is_month_name": 0}


def clickhouse_type(t: pa.DataType) -> str:
    """The ClickHouse column type for an Arrow type (Nullable but for arrays)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"Array({clickhouse_type(t.value_type).removeprefix('Nullable(').removesuffix(')')})"
    for test, name in ((pa.types.is_boolean, "Bool"), (pa.types.is_int8, "Int8"), (pa.types.is_int16, "Int16"),
                       (pa.types.is_int32, "Int32"), (pa.types.is_int64, "Int64"), (pa.types.is_floating, "Float64"),
                       (pa.types.is_timestamp, "DateTime64(6)"), (pa.types.is_date, "Date32"),
                       (pa.types.is_string, "String"), (pa.types.is_large_string, "String"),
                       (pa.types.is_binary, "String"), (pa.types.is_large_binary, "String"), (pa.types.is_null, "String")):
        if test(t):
            return f"Nullable({name})"
    raise TypeError(f"no ClickHouse type for Arrow {t}")


class ClickHouseWarehouse(Warehouse):
    engine = "clickhouse"

    def __init__(self, host: str = "localhost", port: int = 8123, user: str = "default", password: str = "",
                 database: str = "crm", secure: bool = False, lock_timeout_s: float = LOCK_TIMEOUT_S,
                 pii_database: str | None = None):
        self.host, self.port, self.user, self.database, self.secure = host, port, user, database, secure
        self.pii_database = pii_database or f"{database}_pii"
        if self.pii_database == database:
            raise ValueError(f"the PII database {self.pii_database!r} must not be the main database")
        self._password = password
        self.lock_timeout_s = lock_timeout_s
        self._client = None

    def __repr__(self) -> str:  # never the password
        return f"ClickHouseWarehouse({self.user}@{self.host}:{self.port}/{self.database}+{self.pii_database})"

    @property
    def client(self):
        if self._client is None:
            import clickhouse_connect

            try:
                self._client = clickhouse_connect.get_client(
                    host=self.host, port=self.port, username=self.user, password=self._password, secure=self.secure,
                    settings=SESSION_SETTINGS)
            except Exception as e:
                raise WarehouseUnavailable(f"cannot reach ClickHouse at {self.host}:{self.port} as {self.user}: {e}. "
                                   "Check CLICKHOUSE_HOST, CLICKHOUSE_PORT, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD "
                                   "and CLICKHOUSE_SECURE.") from e
            # Atomic: EXCHANGE TABLES needs it (and some servers default to another engine).
            for database in (self.database, self.pii_database):
                self._client.command(f'create database if not exists "{database}" engine = Atomic')
        return self._client

    def located(self, schema: str, table: str) -> tuple[str, str]:
        """(database, table) of a contract table: `pii` tables in the PII database under their own
        name, every other one as `<schema>__<table>` in the main database."""
        if schema == PII_SCHEMA:
            return self.pii_database, table
        return self.database, f"{schema}__{table}"

    def table_name(self, schema: str, table: str) -> str:
        database, name = self.located(schema, table)
        return f'"{database}"."{name}"'

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> None:
        self.client.command(to_clickhouse(sql, params))

    def fetchall(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple]:
        return [tuple(r) for r in self.client.query(to_clickhouse(sql, params)).result_rows]

    def fetch_arrow(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None,
                    tables: Mapping[str, pa.Table] | None = None) -> pa.Table:
        external = None
        if tables:
            from clickhouse_connect.driver.external import ExternalData

            external = ExternalData()
            for name, table in tables.items():
                external.add_file(file_name=name, data=_parquet(table), fmt="Parquet",
                                  structure=[f"{f.name} {clickhouse_type(f.type)}" for f in table.schema])
        return self.client.query_arrow(to_clickhouse(sql, params), external_data=external)

    def insert_arrow(self, schema: str, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        if not data.num_rows:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        database, name = self.located(schema, table)
        self.client.insert_arrow(name, data, database=database, settings=settings)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError("ClickHouse has no multi-statement transactions: write whole tables with "
                                  "replace_table (build, then swap), and serialize writers with exclusive()")
        yield  # pragma: no cover

    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        name, build = self.table_name(schema, table), self.table_name(schema, table + "__build")
        cols = ", ".join(f'"{f.name}" {clickhouse_type(f.type)}' for f in data.schema)
        self.client.command(f"drop table if exists {build}")
        self.client.command(f"create table {build} ({cols}) engine = MergeTree order by tuple()")
        self.insert_arrow(schema, table + "__build", data)
        if self.table_exists(schema, table):
            self.client.command(f"exchange tables {build} and {name}")
            self.client.command(f"drop table {build}")
        else:
            self.client.command(f"rename table {build} to {name}")
        return data.num_rows

    def rebuild_table(self, table: TableDef, selects: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        build = replace(table, name=table.name + "__build")
        name, build_name = self.table_name(table.schema, table.name), self.table_name(build.schema, build.name)
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        self.client.command(f"drop table if exists {build_name}")
        self.client.command(build.clickhouse_ddl(self.database, self.pii_database))
        try:
            for sql, params in selects:
                self.client.command(f"insert into {build_name} ({cols}) {to_clickhouse(sql, dict(params))}",
                                    settings=_insert_settings(table))
        except BaseException:
            self.client.command(f"drop table if exists {build_name}")
            raise
        if self.table_exists(table.schema, table.name):
            self.client.command(f"exchange tables {build_name} and {name}")
            self.client.command(f"drop table {build_name}")
        else:
            self.client.command(f"rename table {build_name} to {name}")
        return self.row_count(table.schema, table.name)

    def replace_range(self, table: TableDef, start: date, end: date,
                      selects: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        """The range's rows are built aside, then each day's partition is swapped in (REPLACE
        PARTITION: atomic per day), and days the build has no row for are dropped."""
        if table.partition_granularity != "day":
            raise ValueError(f"{table.schema}.{table.name} is not partitioned by day: replace_range needs day partitions")
        self.ensure_table(table)
        database, stored = self.located(table.schema, table.name)
        table.require_columns([c for (c,) in self.client.query(
            "select name from system.columns where database = {db:String} and table = {t:String} order by position",
            parameters={"db": database, "t": stored}).result_rows])
        build = replace(table, name=table.name + "__range")
        name, build_name = self.table_name(table.schema, table.name), self.table_name(build.schema, build.name)
        cols, day = ", ".join(f'"{c}"' for c in table.column_names), f'"{table.partition_by}"'
        in_range = {"range_start": start, "range_end": end}
        self.client.command(f"drop table if exists {build_name}")
        self.client.command(build.clickhouse_ddl(self.database, self.pii_database))
        try:
            for sql, params in selects:
                self.client.command(f"insert into {build_name} ({cols}) " + to_clickhouse(
                    f"select {cols} from ({sql}) as rows_in where {day} >= $range_start and {day} < $range_end",
                    {**params, **in_range}), settings=_insert_settings(table))
            days = {}
            for source in (name, build_name):
                days[source] = {p for (p,) in self.client.query(
                    f"select distinct toString({table.clickhouse_partition_key}) from {source} "
                    f"where {day} >= {{range_start:Date32}} and {day} < {{range_end:Date32}}",
                    parameters=in_range).result_rows}
            for partition in sorted(days[name] | days[build_name]):
                if partition in days[build_name]:
                    self.client.command(f"alter table {name} replace partition id '{partition}' from {build_name}")
                else:
                    self.client.command(f"alter table {name} drop partition id '{partition}'")
            return self.row_count(build.schema, build.name)
        finally:
            self.client.command(f"drop table if exists {build_name}")

    def update_column(self, schema: str, table: str, column: str, key: str, mapping: pa.Table) -> None:
        """A synchronous mutation reading the map through a Join table (joinGet): one pass over the
        parts that hold mapped keys, visible at once when it finishes."""
        join = self.table_name(schema, f"{table}__map_{column}")
        join_db, join_name = self.located(schema, f"{table}__map_{column}")
        self.client.command(f"drop table if exists {join}")
        self.client.command(f"create table {join} (key String, value Nullable(String)) engine = Join(ANY, LEFT, key)")
        try:
            self.insert_arrow(schema, f"{table}__map_{column}", mapping.select(["key", "value"]))
            lookup = f"joinGet('{join_db}.{join_name}', 'value', assumeNotNull(\"{key}\"))"
            self.client.command(
                f'alter table {self.table_name(schema, table)} update "{column}" = {lookup} '
                f'where "{key}" in (select key from {join}) and "{column}" is distinct from {lookup}',
                settings={"mutations_sync": 2})
        finally:
            self.client.command(f"drop table if exists {join}")

    def delete_rows(self, schema: str, table: str, where_sql: str,
                    params: Sequence[Any] | Mapping[str, Any] | None = None) -> int:
        name = self.table_name(schema, table)
        count = to_clickhouse(f"select count(*) from {name} where {where_sql}", params)
        (deleted,) = self.client.query(count).result_rows[0]
        if deleted:
            # The predicate transpiled as a whole statement, then put in the mutation's place.
            where = count.split(" WHERE ", 1)[1]
            self.client.command(f"alter table {name} delete where {where}", settings={"mutations_sync": 2})
        return int(deleted)

    def table_exists(self, schema: str, table: str) -> bool:
        database, name = self.located(schema, table)
        return bool(self.client.query("select 1 from system.tables where database = {db:String} and name = {t:String}",
                                      parameters={"db": database, "t": name}).result_rows)

    def list_tables(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for name, column, kind in self.client.query(
                "select c.table, c.name, c.type from system.columns c join system.tables t "
                "on t.database = c.database and t.name = c.table where c.database = {db:String} "
                "and t.engine like '%MergeTree' and position(c.table, '__') > 0 order by c.table, c.position",
                parameters={"db": self.database}).result_rows:
            schema, table = name.split("__", 1)
            tables.setdefault((schema, table), []).append((column, kind))
        # The PII database's tables are the `pii` schema's, under their own names.
        for name, column, kind in self.client.query(
                "select c.table, c.name, c.type from system.columns c join system.tables t "
                "on t.database = c.database and t.name = c.table where c.database = {db:String} "
                "and t.engine like '%MergeTree' order by c.table, c.position",
                parameters={"db": self.pii_database}).result_rows:
            tables.setdefault((PII_SCHEMA, name), []).append((column, kind))
        return tables

    def ensure_table(self, table: TableDef) -> None:
        self.client.command(table.clickhouse_ddl(self.database, self.pii_database))

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Only one holder at a time, across processes and hosts: the holder is whoever created the
        lock table. A holder that died on this host is noticed and its lock broken; elsewhere the
        lock is waited for up to `lock_timeout_s`."""
        lock = self.table_name("lock", name)
        me = f"{socket.gethostname()}:{os.getpid()}"
        deadline = time.monotonic() + self.lock_timeout_s
        pause = 0.05
        while True:
            try:
                self.client.command(f"create table {lock} (holder String) engine = Memory comment '{me}'")
                break
            except Exception as e:
                if "already exists" not in str(e).lower() and "TABLE_ALREADY_EXISTS" not in str(e):
                    raise
            holder = self._lock_holder(lock)
            if holder is not None and _dead_here(holder):
                self.client.command(f"drop table if exists {lock}")
                continue
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the ClickHouse lock {lock} is held by {holder or 'another writer'} since more than "
                                   f"{self.lock_timeout_s:.0f} s: if that process is gone, drop the table {lock}")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        try:
            yield
        finally:
            self.client.command(f"drop table if exists {lock}")

    def _lock_holder(self, lock: str) -> str | None:
        database, name = (part.strip('"') for part in lock.split(".", 1))
        rows = self.client.query("select comment from system.tables where database = {db:String} and name = {t:String}",
                                 parameters={"db": database, "t": name}).result_rows
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _insert_settings(table: TableDef) -> dict[str, int] | None:
    # A table partitioned by day takes years of days in one insert (ClickHouse stops at 100 by default).
    return {"max_partitions_per_insert_block": 0} if table.partition_granularity == "day" else None


def _parquet(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none")
    return buf.getvalue()


def _dead_here(holder: str) -> bool:
    """A holder `host:pid` on this host whose process no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
