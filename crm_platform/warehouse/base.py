"""What every layer may ask of a warehouse engine."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from typing import Any

import pyarrow as pa

from crm_platform.warehouse.tables import TableDef


class Warehouse(ABC):
    engine: str

    @abstractmethod
    def table_name(self, schema: str, table: str) -> str:
        """The engine's quoted name for a contract table."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]: ...

    @abstractmethod
    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None,
                    tables: Mapping[str, pa.Table] | None = None) -> pa.Table:
        """The result as Arrow; `tables` are relations the SQL may read by name (a list of ids to
        join against, say), visible to this statement only."""

    @abstractmethod
    def insert_arrow(self, schema: str, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        """Append rows (columns by name). With `dedup_token`, an insert repeated with the same token
        adds nothing, where the engine can tell (ClickHouse); DuckDB relies on its transactions."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""

    @abstractmethod
    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        """Atomically replace a table's whole content (build, then swap); returns the row count."""

    @abstractmethod
    def rebuild_table(self, table: TableDef, selects: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        """Replace `table`'s content with the rows of `selects` (SQL and its parameters, columns in the
        table's order), computed inside the engine: built aside, then swapped in atomically. Returns
        the row count."""

    @abstractmethod
    def replace_range(self, table: TableDef, start: date, end: date,
                      selects: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        """Replace the rows of `table` whose `table.partition_by` date is in [start, end) with those
        rows of `selects` (columns named as the table's); rows of other days stay. Each day is replaced atomically (DuckDB: the whole
        range in one transaction; ClickHouse: a day partition at a time). Returns the rows written."""

    @abstractmethod
    def update_column(self, schema: str, table: str, column: str, key: str, mapping: pa.Table) -> None:
        """Set `column` to `mapping.value` on the rows whose `key` equals `mapping.key` (a string
        map), where it differs; other rows are left as they are. Atomic for readers of the table."""

    @abstractmethod
    def delete_rows(self, schema: str, table: str, where_sql: str,
                    params: Sequence[Any] | Mapping[str, Any] | None = None) -> int:
        """Delete the rows of `schema.table` for which `where_sql` (a DuckDB-dialect predicate with `?`
        or `$name` parameters; it may read other tables) holds, and return how many. DuckDB: one
        statement, part of an open `transaction()`. ClickHouse: a synchronous mutation (`ALTER TABLE
        ... DELETE`, `mutations_sync = 2`) that rewrites the parts holding matching rows, so the data
        is physically gone when it returns (a lightweight `DELETE FROM` only masks rows until a merge);
        its count is taken just before, exact when no other writer adds matching rows meanwhile
        (hold `exclusive()`)."""

    @abstractmethod
    def table_exists(self, schema: str, table: str) -> bool: ...

    @abstractmethod
    def list_tables(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """Every table the warehouse holds, (schema, table) -> its (column, engine type) in order:
        for sweeps that must reach every table, including ones a later layer adds."""

    @abstractmethod
    def ensure_table(self, table: TableDef) -> None:
        """Create the table (and its schema) if it does not exist yet."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    def pii_separate(self) -> bool:
        """The `pii` tables are in a store of their own that no transaction writes together with the
        other tables (DuckDB with CRM_PII_DUCKDB_PATH): a writer changing both commits each side in a
        transaction of its own, the pii side first. (ClickHouse has no transactions to share.)"""
        return False

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the writer lock `name` (across processes) for the block. DuckDB needs none: one
        process holds the file."""
        yield

    def release_memory(self) -> None:
        """Give cached pages back to the operating system after a large read, where the engine holds
        them in this process (an embedded DuckDB). A server engine holds nothing here."""

    def row_count(self, schema: str, table: str) -> int:
        return self.fetchall(f"select count(*) from {self.table_name(schema, table)}")[0][0]

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
