"""What every layer may ask of a warehouse engine."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any, Sequence

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
    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""

    @abstractmethod
    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        """Atomically replace a table's whole content (build, then swap); returns the row count."""

    @abstractmethod
    def table_exists(self, schema: str, table: str) -> bool: ...

    @abstractmethod
    def ensure_table(self, table: TableDef) -> None:
        """Create the table (and its schema) if it does not exist yet."""

    @abstractmethod
    def close(self) -> None: ...

    def row_count(self, schema: str, table: str) -> int:
        return self.fetchall(f"select count(*) from {self.table_name(schema, table)}")[0][0]

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
