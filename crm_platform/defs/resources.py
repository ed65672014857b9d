"""The warehouse resource every asset runs its SQL through (resources, not I/O managers: DESIGN.md)."""
from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import dagster as dg

from crm_platform.settings import Settings
from crm_platform.warehouse import Warehouse, open_warehouse

# Resource field -> the environment variable it stands for (CONTRACT §2).
ENV_FIELDS = {
    "warehouse": "CRM_WAREHOUSE",
    "clickhouse_host": "CLICKHOUSE_HOST",
    "clickhouse_port": "CLICKHOUSE_PORT",
    "clickhouse_user": "CLICKHOUSE_USER",
    "clickhouse_password": "CLICKHOUSE_PASSWORD",
    "clickhouse_database": "CLICKHOUSE_DATABASE",
    "clickhouse_pii_database": "CLICKHOUSE_PII_DATABASE",
    "clickhouse_secure": "CLICKHOUSE_SECURE",
    "pii_key": "CRM_PII_KEY",
    "pii_duckdb_path": "CRM_PII_DUCKDB_PATH",
}


class WarehouseResource(dg.ConfigurableResource):
    """The configured warehouse. Fields bound to `dg.EnvVar` are resolved when a run starts, and the
    UI shows only the variable's name, never a secret; unset fields come from the environment too
    (Settings, CONTRACT §2). A connection is opened only inside a run, never when definitions load
    or a sensor ticks."""

    data_dir: Optional[str] = None
    duckdb_path: Optional[str] = None
    warehouse: Optional[str] = None
    clickhouse_host: Optional[str] = None
    clickhouse_port: Optional[str] = None
    clickhouse_user: Optional[str] = None
    clickhouse_password: Optional[str] = None
    clickhouse_database: Optional[str] = None
    clickhouse_pii_database: Optional[str] = None
    clickhouse_secure: Optional[str] = None
    pii_key: Optional[str] = None
    pii_duckdb_path: Optional[str] = None

    def settings(self) -> Settings:
        configured = {var: getattr(self, field) for field, var in ENV_FIELDS.items() if getattr(self, field)}
        s = Settings.from_env({**os.environ, **configured})
        if self.data_dir:
            s = dataclasses.replace(s, data_dir=Path(self.data_dir),
                                    duckdb_path=Path(self.duckdb_path or Path(self.data_dir) / "warehouse.duckdb"))
        elif self.duckdb_path:
            s = dataclasses.replace(s, duckdb_path=Path(self.duckdb_path))
        return s

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        with open_warehouse(self.settings()) as wh:
            yield wh


def warehouse_resource(env: dict[str, str] | None = None) -> WarehouseResource:
    """The resource with every CONTRACT §2 variable that is set bound to its `dg.EnvVar`."""
    env = os.environ if env is None else env
    return WarehouseResource(**{field: dg.EnvVar(var) for field, var in ENV_FIELDS.items() if env.get(var)})


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": warehouse_resource()})
