"""The engine seam: every layer reads and writes the warehouse through `Warehouse`.

DuckDB is the embedded default. Tables are addressed as (schema, table); each engine maps that to its
own name (`schema.table` in DuckDB, `schema__table` in ClickHouse).
"""
from crm_platform.warehouse.base import Warehouse
from crm_platform.warehouse.duckdb_engine import DuckDBWarehouse


def open_warehouse(settings) -> Warehouse:
    """The warehouse the settings name. The caller closes it (it is a context manager)."""
    if settings.warehouse == "duckdb":
        return DuckDBWarehouse(settings.duckdb_path)
    raise NotImplementedError(f"warehouse engine {settings.warehouse!r} is not available yet")


__all__ = ["Warehouse", "DuckDBWarehouse", "open_warehouse"]
