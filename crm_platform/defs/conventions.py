"""House conventions for warehouse assets: key = [schema, table], group = layer, kinds = engine,
one writer at a time on DuckDB through a pool, and the metadata every asset shows in the UI."""
from __future__ import annotations

import functools
import inspect
import os
from datetime import date, timedelta
from typing import Any, Iterable

import dagster as dg
import pyarrow as pa

from crm_platform.governance.redaction import redact
from crm_platform.governance.residency import table_zones
from crm_platform.settings import Settings
from crm_platform.warehouse import Warehouse
from crm_platform.warehouse.errors import is_transient

ENGINE = Settings.from_env().warehouse
# Time-partitioned tables are partitioned by UTC day from this date (read when definitions load).
PARTITIONS_START = os.environ.get("CRM_PARTITIONS_START") or "2025-01-01"
DAILY = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
# Warehouse assets are expected fresh from the nightly refresh (02:00 UTC) by 06:00 UTC.
NIGHTLY_FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=4))


def warehouse_pool(step: str) -> str:
    """The concurrency pool of a warehouse step (pools default to one slot: dagster.yaml). DuckDB
    allows one writing process per file, so all its steps share one pool; ClickHouse takes concurrent
    writers, so only runs of the same step wait for each other (they would build the same tables)."""
    return "warehouse_duckdb" if ENGINE == "duckdb" else f"warehouse_clickhouse_{step}"

_ARROW_TO_DAGSTER = [(pa.types.is_timestamp, "timestamp"), (pa.types.is_date, "date"),
                     (pa.types.is_boolean, "boolean"), (pa.types.is_integer, "integer"),
                     (pa.types.is_floating, "float"), (pa.types.is_decimal, "decimal"),
                     (pa.types.is_string, "string"), (pa.types.is_large_string, "string")]


# Layers refreshed as soon as what they read was (declarative automation): a file the sensor
# ingested reaches identity, attribution and the marts within minutes. Features and scoring, costly
# and nightly by nature, and the ingest itself (the sensor's) wait for the schedule.
EAGER_LAYERS = frozenset({"identity", "attribution", "marts"})
# A step failed by a transient warehouse error is retried this many times, waiting
# RETRY_BASE_S x 2^retry (30 s, 60 s, 120 s); any other error fails the step at once.
RETRIES = 3
RETRY_BASE_S = 30.0


def layer_policies(group: str) -> dict[str, Any]:
    """Freshness and automation of a layer's assets (AssetSpec and @asset keyword arguments)."""
    policies: dict[str, Any] = {"freshness_policy": NIGHTLY_FRESHNESS}
    if group in EAGER_LAYERS:
        policies["automation_condition"] = dg.AutomationCondition.eager()
    return policies


def retry_transient(fn):
    """Wrap an asset's body: a transient warehouse failure (busy, unreachable: warehouse/errors.py)
    asks Dagster to re-run the step after an exponential backoff; other errors propagate."""
    @functools.wraps(fn)
    def body(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            if inspect.isgenerator(result):
                yield from result
            elif result is not None:
                yield result
        except Exception as error:
            if not is_transient(error):
                raise
            retry = dg.OpExecutionContext.get().retry_number
            raise dg.RetryRequested(max_retries=RETRIES, seconds_to_wait=RETRY_BASE_S * 2 ** retry) from error
    return body


def warehouse_asset(schema: str, table: str, *, group: str, description: str,
                    owners: Iterable[str] = (), **kwargs: Any):
    """`@dg.asset` for a warehouse table, with the house key, group, kinds, pool, the layer's
    policies and retries of transient failures."""
    decorate = dg.asset(key=[schema, table], group_name=group, description=description, owners=list(owners),
                        kinds={ENGINE}, pool=warehouse_pool(f"{schema}__{table}"),
                        **{**layer_policies(group), **kwargs})
    return lambda fn: decorate(retry_transient(fn))


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """The days [start, end) a run writes of a daily-partitioned asset (one partition or a backfill's
    range); None for an unpartitioned asset, even in a run that carries a partition range."""
    if context.assets_def.partitions_def is None:
        return None
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def check_result(result) -> dg.AssetCheckResult:
    """A domain layer's CheckResult (crm_platform.ingest.checks) as Dagster's asset check result."""
    return dg.AssetCheckResult(asset_key=dg.AssetKey(list(result.asset)), check_name=result.name, passed=result.passed,
                               severity=dg.AssetCheckSeverity(result.severity), description=result.description,
                               metadata=result.metadata)


def team(owner: str) -> str:
    """A tracking-plan owner (`revenue-analytics`) as a Dagster owner (`team:revenue_analytics`)."""
    return "team:" + owner.replace("-", "_")


def plan_owners(*event_types: str) -> list[str]:
    """The owners of an asset: the tracking plan's owners of the event types it is about (every
    type when none is named), so the UI names the team to ask, as the plan does."""
    from crm_platform.plan.loader import load_plan

    plan = load_plan()
    return list(dict.fromkeys(team(plan.event_types[t].owner) for t in (event_types or sorted(plan.event_types))))


def column_schema(table: pa.Table | pa.Schema) -> dg.TableSchema:
    schema = table.schema if isinstance(table, pa.Table) else table
    def kind(t: pa.DataType) -> str:
        return next((name for test, name in _ARROW_TO_DAGSTER if test(t)), str(t))
    return dg.TableSchema(columns=[dg.TableColumn(f.name, kind(f.type)) for f in schema])


def table_metadata(wh: Warehouse, schema: str, table: str, preview_rows: int = 10,
                   order_by: str | None = None) -> dict[str, Any]:
    """Row count, column schema and a markdown preview: what a person would otherwise query for; and
    the data residency zones its rows hold (governance/residency.py `table_zones`: per zone of the
    rows, of their leads, or of core.events for an aggregate)."""
    name = wh.table_name(schema, table)
    preview = wh.fetch_arrow(f"select * from {name}" + (f" order by {order_by}" if order_by else "")
                             + f" limit {int(preview_rows)}")
    return {
        "dagster/row_count": dg.MetadataValue.int(wh.row_count(schema, table)),
        "dagster/column_schema": column_schema(preview),
        "dagster/table_name": f"{schema}.{table}",
        "preview": dg.MetadataValue.md(markdown_table(preview)),
        "data_residency": dg.MetadataValue.json(table_zones(wh, schema, table, preview.column_names)),
    }


def markdown_table(table: pa.Table, max_cell: int = 60) -> str:
    """A markdown table of `table`, ids and keyed hashes masked (crm_platform/governance/redaction.py)."""
    cols = table.column_names
    def cell(column: str, v: Any) -> str:
        s = "" if v is None else redact(column, str(v))
        s = s.replace("|", "\\|").replace("\n", " ")
        return s if len(s) <= max_cell else s[: max_cell - 1] + "…"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.to_pylist():
        lines.append("| " + " | ".join(cell(c, row[c]) for c in cols) + " |")
    return "\n".join(lines)
