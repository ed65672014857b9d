"""The engine seam: every layer reads and writes the warehouse through `Warehouse`.

DuckDB is the embedded default. Tables are addressed as (schema, table); each engine maps that to its
own name (`schema.table` in DuckDB, `schema__table` in ClickHouse; the `pii` schema apart: in its own
database on ClickHouse, and in DuckDB optionally its own file).
"""
from crm_platform.warehouse.base import Warehouse
from crm_platform.warehouse.clickhouse_engine import ClickHouseWarehouse
from crm_platform.warehouse.duckdb_engine import DuckDBWarehouse


def open_warehouse(settings) -> Warehouse:
    """The warehouse the settings name (CRM_WAREHOUSE). The caller closes it (it is a context manager)."""
    if settings.warehouse == "duckdb":
        return DuckDBWarehouse(settings.duckdb_path, pii_path=settings.duckdb_pii_path)
    if settings.warehouse == "clickhouse":
        return ClickHouseWarehouse(host=settings.clickhouse_host, port=settings.clickhouse_port,
                                   user=settings.clickhouse_user, password=settings.clickhouse_password,
                                   database=settings.clickhouse_database, secure=settings.clickhouse_secure,
                                   pii_database=settings.clickhouse_pii_database)
    raise ValueError(f"unknown warehouse engine {settings.warehouse!r}")


__all__ = ["Warehouse", "ClickHouseWarehouse", "DuckDBWarehouse", "open_warehouse"]
