"""House conventions for warehouse assets: key = [schema, table], group = layer, kinds = engine,
one writer at a time on DuckDB through a pool, and the metadata every asset shows in the UI."""
from __future__ import annotations

from typing import Any, Iterable

import dagster as dg
import pyarrow as pa

from crm_platform.settings import Settings
from crm_platform.warehouse import Warehouse

ENGINE = Settings.from_env().warehouse
# DuckDB allows one writing process per file: its assets share a pool of one (dagster.yaml).
# ClickHouse takes concurrent writers, so its pool is configured wider rather than serialized.
WAREHOUSE_POOL = f"warehouse_{ENGINE}"

_ARROW_TO_DAGSTER = [(pa.types.is_timestamp, "timestamp"), (pa.types.is_date, "date"),
                     (pa.types.is_boolean, "boolean"), (pa.types.is_integer, "integer"),
                     (pa.types.is_floating, "float"), (pa.types.is_decimal, "decimal"),
                     (pa.types.is_string, "string"), (pa.types.is_large_string, "string")]


def warehouse_asset(schema: str, table: str, *, group: str, description: str,
                    owners: Iterable[str] = (), **kwargs: Any):
    """`@dg.asset` for a warehouse table, with the house key, group, kinds and pool."""
    return dg.asset(key=[schema, table], group_name=group, description=description, owners=list(owners),
                    kinds={ENGINE}, pool=WAREHOUSE_POOL, **kwargs)


def check_result(result) -> dg.AssetCheckResult:
    """A domain layer's CheckResult (crm_platform.ingest.checks) as Dagster's asset check result."""
    return dg.AssetCheckResult(asset_key=dg.AssetKey(list(result.asset)), check_name=result.name, passed=result.passed,
                               severity=dg.AssetCheckSeverity(result.severity), description=result.description,
                               metadata=result.metadata)


def team(owner: str) -> str:
    """A tracking-plan owner (`revenue-analytics`) as a Dagster owner (`team:revenue_analytics`)."""
    return "team:" + owner.replace("-", "_")


def column_schema(table: pa.Table | pa.Schema) -> dg.TableSchema:
    schema = table.schema if isinstance(table, pa.Table) else table
    def kind(t: pa.DataType) -> str:
        return next((name for test, name in _ARROW_TO_DAGSTER if test(t)), str(t))
    return dg.TableSchema(columns=[dg.TableColumn(f.name, kind(f.type)) for f in schema])


def table_metadata(wh: Warehouse, schema: str, table: str, preview_rows: int = 10,
                   order_by: str | None = None) -> dict[str, Any]:
    """Row count, column schema and a markdown preview: what a person would otherwise query for."""
    name = wh.table_name(schema, table)
    preview = wh.fetch_arrow(f"select * from {name}" + (f" order by {order_by}" if order_by else "")
                             + f" limit {int(preview_rows)}")
    return {
        "dagster/row_count": dg.MetadataValue.int(wh.row_count(schema, table)),
        "dagster/column_schema": column_schema(preview),
        "dagster/table_name": f"{schema}.{table}",
        "preview": dg.MetadataValue.md(markdown_table(preview)),
    }


def markdown_table(table: pa.Table, max_cell: int = 60) -> str:
    cols = table.column_names
    def cell(v: Any) -> str:
        s = "" if v is None else str(v)
        s = s.replace("|", "\\|").replace("\n", " ")
        return s if len(s) <= max_cell else s[: max_cell - 1] + "…"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.to_pylist():
        lines.append("| " + " | ".join(cell(row[c]) for c in cols) + " |")
    return "\n".join(lines)
